"""Every table of the warehouse: layer, name, grain, partition column and primary key."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey

from medallion_assets.schemas import TOPICS


@dataclass(frozen=True)
class Table:
    """A Delta table at <warehouse>/<layer>/<name>, one Dagster asset."""

    layer: str
    name: str
    grain: str
    partition_column: str | None = None
    key: tuple[str, ...] = ()

    @property
    def asset_key(self) -> AssetKey:
        """Asset key [layer, name]."""
        return AssetKey([self.layer, self.name])

    @property
    def path(self) -> str:
        """Path below the warehouse root."""
        return f"{self.layer}/{self.name}"


RAW = {
    topic: Table("raw", topic, "one row per Kafka record", "event_date", ("kafka_partition", "kafka_offset"))
    for topic in TOPICS
}
BRONZE = {
    topic: Table(
        "bronze",
        topic,
        "one row per distinct valid event of the day",
        "event_date",
        ("userId", "sessionId", "itemInSession", "ts"),
    )
    for topic in TOPICS
}
QUARANTINE = Table(
    "bronze", "quarantine", "one row per raw record of the day kept out of bronze, with the reason", "event_date",
    ("kafka_topic", "kafka_partition", "kafka_offset"),
)
DIM_USERS = Table("silver", "dim_users", "one row per user and version of tracked attributes", None, ("userKey",))
DIM_LOCATION = Table("silver", "dim_location", "one row per (city, stateCode, zip)", None, ("locationKey",))
DIM_SONGS = Table("silver", "dim_songs", "one row per song_id of songs.csv", None, ("songKey",))
DIM_ARTISTS = Table("silver", "dim_artists", "one row per cleaned artist name", None, ("artistKey",))
DIM_DATETIME = Table("silver", "dim_datetime", "one row per UTC hour of the partitions' range", None, ("dateKey",))
FACT_STREAM = Table(
    "gold", "fact_stream", "one row per bronze listen", "date_part", ("kafka_topic", "kafka_partition", "kafka_offset")
)
WIDE_FACT = Table(
    "gold", "wide_fact", "one row per fact_stream row, with every dimension's attributes", "date_part",
    ("kafka_topic", "kafka_partition", "kafka_offset"),
)
DAILY_USER_SUMMARY = Table(
    "gold", "daily_user_summary", "one row per (date_part, userId, firstName, lastName, level)", "date_part",
    ("date_part", "userId", "firstName", "lastName", "level"),
)
DAILY_LOCATION_SUMMARY = Table(
    "gold", "daily_location_summary", "one row per (date_part, city, state)", "date_part", ("date_part", "city", "state")
)
ARTIST_POPULARITY = Table("gold", "artist_popularity", "one row per artistName, all time", None, ("artistName",))

DIMENSIONS = (DIM_USERS, DIM_LOCATION, DIM_SONGS, DIM_ARTISTS, DIM_DATETIME)

ALL_TABLES: tuple[Table, ...] = (
    *RAW.values(),
    *BRONZE.values(),
    QUARANTINE,
    *DIMENSIONS,
    FACT_STREAM,
    WIDE_FACT,
    DAILY_USER_SUMMARY,
    DAILY_LOCATION_SUMMARY,
    ARTIST_POPULARITY,
)
