"""fact_stream and wide_fact: one row per bronze listen, keyed to every dimension."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion_assets.keys import clean_artist_name, unknown_key

LINEAGE = ("kafka_topic", "kafka_partition", "kafka_offset")


def song_lookup(dim_songs: DataFrame) -> DataFrame:
    """(title, cleaned artist name) -> one songKey: the smallest songId among repeated titles."""
    first = Window.partitionBy("title", "_artist").orderBy("songId")
    return (
        dim_songs.withColumn("_artist", clean_artist_name("artistName"))
        .withColumn("_n", F.row_number().over(first))
        .where("_n = 1")
        .select(F.col("title").alias("_song"), "_artist", "songKey")
    )


def build_fact_stream(
    listens: DataFrame,
    dim_users: DataFrame,
    dim_songs: DataFrame,
    dim_artists: DataFrame,
    dim_location: DataFrame,
) -> DataFrame:
    """Listens keyed point-in-time to users and to songs, artists, locations and hours; unknowns keyed."""
    events = listens.select(
        "userId", "event_timestamp", "city", "state", "zip", *LINEAGE,
        F.col("song").alias("_song"), clean_artist_name("artist").alias("_artist"),
    )
    users = dim_users.select(
        F.col("userId").alias("_uid"), "userKey", "row_activation_ts", "row_expiration_ts"
    )
    in_version = (
        (events.userId == users._uid)
        & (events.event_timestamp >= users.row_activation_ts)
        & (events.event_timestamp < users.row_expiration_ts)
    )
    artists = dim_artists.select(F.col("name").alias("_artist"), "artistKey")
    places = dim_location.select(
        F.col("city").alias("_city"), F.col("stateCode").alias("_state"), F.col("zip").alias("_zip"), "locationKey"
    )
    at_place = (
        (events.city == places._city) & (events.state == places._state) & events.zip.eqNullSafe(places._zip)
    )
    return (
        events.join(users, in_version, "left")
        .join(song_lookup(dim_songs), ["_song", "_artist"], "left")
        .join(artists, "_artist", "left")
        .join(places, at_place, "left")
        .select(
            *[F.coalesce(F.col(k), unknown_key()).alias(k) for k in ("userKey", "artistKey", "songKey")],
            F.unix_timestamp(F.date_trunc("hour", "event_timestamp")).alias("dateKey"),
            F.coalesce(F.col("locationKey"), unknown_key()).alias("locationKey"),
            F.col("event_timestamp").alias("timestamp"),
            F.to_date("event_timestamp").alias("date_part"),
            *LINEAGE,
        )
    )


def build_wide_fact(
    fact: DataFrame,
    dim_users: DataFrame,
    dim_songs: DataFrame,
    dim_artists: DataFrame,
    dim_location: DataFrame,
    dim_datetime: DataFrame,
) -> DataFrame:
    """The fact with every dimension's attributes (the seed's view, plus date_part and lineage)."""
    return (
        fact.join(dim_users.select("userKey", "firstName", "lastName", "gender", "level", "userId"), "userKey", "left")
        .join(dim_songs.select("songKey", F.col("duration").alias("songDuration"), F.col("title").alias("songName")), "songKey", "left")
        .join(
            dim_location.select(
                "locationKey", "city", F.col("stateCode").alias("state"), "latitude", "longitude"
            ),
            "locationKey",
            "left",
        )
        .join(
            dim_datetime.select("dateKey", F.col("datetime").alias("dateHour"), "dayOfMonth", "dayOfWeek"),
            "dateKey",
            "left",
        )
        .join(dim_artists.select("artistKey", F.col("name").alias("artistName")), "artistKey", "left")
        .select(
            "userKey", "artistKey", "songKey", "dateKey", "locationKey", "timestamp",
            "firstName", "lastName", "gender", "level", "userId", "songDuration", "songName",
            "city", "state", "latitude", "longitude", "dateHour", "dayOfMonth", "dayOfWeek", "artistName",
            "date_part", *LINEAGE,
        )
    )
