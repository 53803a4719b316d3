"""dim_songs and dim_artists: the song catalogue of songs.csv."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion_assets.keys import clean_artist_name, md5_key, with_unknown_member
from medallion_assets.tables import DIM_ARTISTS, DIM_SONGS


def song_rows(songs_csv: DataFrame) -> DataFrame:
    """songs.csv rows typed and renamed (seed column names); bad numbers become null."""
    c = F.col
    return songs_csv.select(
        c("song_id").alias("songId"),
        c("title"),
        c("artist_name").alias("artistName"),
        c("artist_id").alias("artistId"),
        c("duration").try_cast("double").alias("duration"),
        c("key").try_cast("int").alias("key"),
        c("key_confidence").try_cast("double").alias("keyConfidence"),
        c("loudness").try_cast("double").alias("loudness"),
        c("song_hotttnesss").try_cast("double").alias("songHotness"),
        c("tempo").try_cast("double").alias("tempo"),
        c("year").try_cast("int").alias("year"),
        c("artist_location").alias("location"),
        c("artist_latitude").try_cast("double").alias("latitude"),
        c("artist_longitude").try_cast("double").alias("longitude"),
    )


def build_dim_songs(kept_songs: DataFrame) -> DataFrame:
    """One row per songId (first title by songId order when repeated), plus the unknown member."""
    first = Window.partitionBy("songId").orderBy("title", "artistName")
    dim = (
        kept_songs.withColumn("_n", F.row_number().over(first))
        .where("_n = 1")
        .withColumn("songKey", md5_key("songId"))
        .select(*DIM_SONGS.column_names)
    )
    nulls = {"duration": "double", "key": "int", "keyConfidence": "double", "loudness": "double",
             "songHotness": "double", "tempo": "double", "year": "int"}
    return with_unknown_member(dim, "songKey", ("songId", "title", "artistName", "artistId"), nulls)


def artist_rows(songs: DataFrame) -> DataFrame:
    """One row per cleaned artist name, attributes aggregated deterministically."""
    return (
        songs.withColumn("name", clean_artist_name("artistName"))
        .groupBy("name")
        .agg(
            F.min("artistId").alias("artistId"),
            F.max("location").alias("location"),
            F.max("latitude").alias("latitude"),
            F.max("longitude").alias("longitude"),
        )
    )


def build_dim_artists(kept_artists: DataFrame) -> DataFrame:
    """Keyed artists plus the unknown member; a name sharing its artistId with another is keyed with its name."""
    by_id = Window.partitionBy("artistId").orderBy("name")
    dim = kept_artists.withColumn(
        "artistKey",
        F.when(F.row_number().over(by_id) == 1, md5_key("artistId")).otherwise(md5_key("artistId", "name")),
    ).select(*DIM_ARTISTS.column_names)
    return with_unknown_member(
        dim, "artistKey", ("artistId", "name", "location"), {"latitude": "double", "longitude": "double"}
    )
