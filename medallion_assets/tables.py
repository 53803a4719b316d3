"""Every table of the warehouse: layer, name, grain, partition column, primary key and columns.

Each column is declared with its Spark SQL type as Spark writes it (`string`, `bigint`, ...), a
description, and, on silver and gold, the upstream columns it is computed from. A description
shared by every table holding the column lives once in COLUMN_DESCRIPTIONS; a column that keeps
the name of the upstream column it comes from needs no sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
from dagster import AssetKey

from medallion_assets.schemas import TOPIC_EXTRA_FIELDS, TOPICS, event_fields

OWNER = "team:data-platform"
# Layers whose assets declare column lineage (raw is read from Kafka, bronze is raw typed and renamed).
LINEAGE_LAYERS = ("silver", "gold")

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "kafka_topic": "Physical Kafka topic the record was read from, MEDALLION_TOPIC_PREFIX included.",
    "kafka_partition": "Kafka partition of the record.",
    "kafka_offset": "Offset of the record in its partition; (kafka_topic, kafka_partition, kafka_offset) names one record.",
    "kafka_timestamp": "Timestamp Kafka recorded for the record (UTC).",
    "kafka_key": "Record key as text (the producer's userId, when it sets one); invalid UTF-8 replaced.",
    "value": "The original message as text, invalid UTF-8 replaced (the bytes themselves are in value_bytes).",
    "value_bytes": "The original message bytes when they are not valid UTF-8; null otherwise.",
    "parse_error": "Why the message is malformed (empty message, not UTF-8, invalid JSON object, wrong type: <fields>); null when it is not.",
    "rescued": "What the event contract does not describe, as a JSON object: each field outside it, and each contract "
    "field sent as another JSON kind than its producers send (a string for a number, ...). Null when there is none.",
    "event_date": "UTC day of ts: the day partition. Null when ts is missing or unreadable.",
    "ingestion_timestamp": "When the record was appended to raw (UTC).",
    "ts": "Event time in epoch milliseconds, as sent.",
    "sessionId": "Session of the user.",
    "userId": "User id as text (Eventsim sends a number, the seed's generator a string).",
    "auth": "Authentication state: Logged In, Logged Out, Guest or Cancelled.",
    "level": "Subscription level: free or paid.",
    "itemInSession": "Position of the event in its session.",
    "firstName": "User's first name.",
    "lastName": "User's last name.",
    "gender": "User's gender (M or F).",
    "registration": "When the user registered, epoch milliseconds, as sent.",
    "city": "City of the user's location.",
    "zip": "ZIP code of the user's location.",
    "state": "Two-letter US state code of the user's location.",
    "lat": "Latitude of the user's location.",
    "lon": "Longitude of the user's location.",
    "userAgent": "Browser user agent of the session.",
    "page": "Page requested (NextSong for a listen).",
    "method": "HTTP method of the request.",
    "status": "HTTP status of the response.",
    "artist": "Artist name, as sent.",
    "song": "Song title, as sent.",
    "success": "Whether the login succeeded.",
    "prevLevel": "Subscription level before the change (sent by the seed's generator only).",
    "statusChangeType": "Kind of change: upgrade or downgrade (sent by the seed's generator only).",
    "event_timestamp": "Event time (UTC), from ts.",
    "registration_time": "When the user registered (UTC), from registration.",
    "latitude": "Latitude of the user's location.",
    "longitude": "Longitude of the user's location.",
    "userKey": "dim_users version: md5(userId, level, row_activation_ts); md5('Unknown') for the unknown user.",
    "songKey": "dim_songs row: md5(songId); md5('Unknown') for the unknown song.",
    "artistKey": "dim_artists row: md5(artistId), or md5(artistId, name) for a second name of one artistId; md5('Unknown') for the unknown artist.",
    "locationKey": "dim_location row: md5(city, stateCode, coalesce(zip, 'Unknown')); md5('Unknown') for the unknown location.",
    "dateKey": "dim_datetime row: epoch seconds of the UTC hour.",
    "date_part": "UTC day of the listen: the day partition.",
    "timestamp": "Time of the listen (UTC).",
    "total_streams": "Listens (fact_stream rows) in the group.",
    "unique_users": "Distinct userIds that listened in the group.",
    "unique_songs": "Distinct songKeys listened to in the group.",
    "unique_artists": "Distinct artistKeys listened to in the group.",
}


# Arrow type of each Spark SQL type a column declares: what delta-rs writes so Spark reads that type back.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "binary": pa.binary(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    """A column: name, Spark SQL type, description (default: the shared one) and upstream sources.

    With no sources, a column of a silver or gold table comes from the same-named column of each
    upstream table that has one.
    """

    name: str
    type: str
    description: str = ""
    sources: tuple[tuple[Table, str], ...] = ()

    @property
    def doc(self) -> str:
        """The column's description: its own, else the shared one of its name."""
        if self.description:
            return self.description
        if self.name not in COLUMN_DESCRIPTIONS:
            raise KeyError(f"column {self.name} has no description: give it one, or add its name to COLUMN_DESCRIPTIONS")
        return COLUMN_DESCRIPTIONS[self.name]


@dataclass(frozen=True)
class Table:
    """A Delta table at <warehouse>/<layer>/<name>, one Dagster asset."""

    layer: str
    name: str
    grain: str
    partition_column: str | None = None
    key: tuple[str, ...] = ()
    columns: tuple[Column, ...] = field(default=(), compare=False, repr=False)
    stats: tuple[str, ...] = ()  # columns beyond the key whose file statistics are read

    @property
    def stats_columns(self) -> tuple[str, ...]:
        """The columns Delta keeps file statistics on (min, max, null count): the key and `stats`, not
        the day partition. Statistics on every column cost the writes more than any read gains."""
        return tuple(c for c in (*self.key, *self.stats) if c != self.partition_column)

    @property
    def asset_key(self) -> AssetKey:
        """Asset key [layer, name]."""
        return AssetKey([self.layer, self.name])

    @property
    def path(self) -> str:
        """Path below the warehouse root."""
        return f"{self.layer}/{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of the columns, in table order."""
        return tuple(c.name for c in self.columns)

    def ddl(self) -> str:
        """The columns as Spark DDL text (types by name, see schemas.ddl)."""
        return ", ".join(f"`{c.name}` {c.type}" for c in self.columns)

    def arrow_schema(self) -> pa.Schema:
        """The columns as Arrow types, as a JVM-free writer writes them (timestamps in UTC microseconds)."""
        return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in self.columns])

    def column_sources(self, column: Column, upstream: Sequence[Table]) -> tuple[tuple[Table, str], ...]:
        """Upstream (table, column) pairs a column is computed from: its declared sources, else its name upstream."""
        return column.sources or tuple((t, column.name) for t in upstream if column.name in t.column_names)


def of(tables: Table | Sequence[Table], *columns: str) -> tuple[tuple[Table, str], ...]:
    """Sources: the given columns of one upstream table, or of each of several."""
    return tuple((t, c) for t in ((tables,) if isinstance(tables, Table) else tables) for c in columns)


KAFKA_COLUMNS = (
    Column("kafka_topic", "string"),
    Column("kafka_partition", "int"),
    Column("kafka_offset", "bigint"),
    Column("kafka_timestamp", "timestamp"),
)
EVENT_DATE = Column("event_date", "date")
RAW_DESCRIPTIONS = {"duration": "Listen duration as sent: seconds (Eventsim) or milliseconds (the seed's generator)."}
# Bronze's event columns before the topic's own fields; the timestamps are derived, the others keep their field's type.
BRONZE_EVENT_COLUMNS = (
    "ts", "event_timestamp", "userId", "sessionId", "itemInSession", "auth", "level",
    "firstName", "lastName", "gender", "registration", "registration_time",
    "city", "zip", "state", "latitude", "longitude", "userAgent",
)
BRONZE_TIMESTAMPS = ("event_timestamp", "registration_time")
BRONZE_RENAMED = {"latitude": "lat", "longitude": "lon"}
BRONZE_DESCRIPTIONS = {
    "userId": "User id as text, trimmed: never null or empty in bronze.",
    "duration": "Listen duration in seconds (the seed's milliseconds divided by 1000).",
}


def raw_columns(topic: str) -> tuple[Column, ...]:
    """A raw table: the Kafka record, the original message, every event field typed, and how it parsed."""
    return (
        *KAFKA_COLUMNS,
        Column("kafka_key", "string"),
        Column("value", "string"),
        Column("value_bytes", "binary"),
        *(Column(name, dtype.simpleString(), RAW_DESCRIPTIONS.get(name, "")) for name, dtype in event_fields(topic).items()),
        Column("parse_error", "string"),
        Column("rescued", "string"),
        EVENT_DATE,
        Column("ingestion_timestamp", "timestamp"),
    )


def bronze_type(topic: str, name: str) -> str:
    """Spark SQL type of a bronze event column: a derived timestamp, else its event field's type."""
    return "timestamp" if name in BRONZE_TIMESTAMPS else event_fields(topic)[BRONZE_RENAMED.get(name, name)].simpleString()


def bronze_columns(topic: str) -> tuple[Column, ...]:
    """A bronze table: the Kafka coordinates, the normalised event, the topic's own fields, what the contract
    does not describe, the day."""
    names = (*BRONZE_EVENT_COLUMNS, *TOPIC_EXTRA_FIELDS[topic])
    event = (Column(n, bronze_type(topic, n), BRONZE_DESCRIPTIONS.get(n, "")) for n in names)
    return (*KAFKA_COLUMNS, *event, Column("rescued", "string"), EVENT_DATE)


RAW = {
    topic: Table(
        "raw",
        topic,
        "one row per Kafka record",
        "event_date",
        ("kafka_partition", "kafka_offset"),
        raw_columns(topic),
        stats=("parse_error",),  # its null count tallies a batch's malformed records
    )
    for topic in TOPICS
}
BRONZE = {
    topic: Table(
        "bronze",
        topic,
        "one row per distinct valid event of the day",
        "event_date",
        ("userId", "sessionId", "itemInSession", "ts"),
        bronze_columns(topic),
    )
    for topic in TOPICS
}
QUARANTINE = Table(
    "bronze", "quarantine", "one row per raw record of the day kept out of bronze, with the reason", "event_date",
    ("kafka_topic", "kafka_partition", "kafka_offset"),
    (
        Column("topic", "string", "The pipeline's name of the topic (listen_events, ...): which raw and bronze table the "
               "record belongs to, whatever the prefix of its Kafka topic. Reconciliation counts by it."),
        Column("kafka_topic", "string", "The Kafka topic the record was read from, MEDALLION_TOPIC_PREFIX included: "
               "where to find it again. Equal to topic when there is no prefix."),
        *KAFKA_COLUMNS[1:3],
        Column("reject_reason", "string", "Why the record is not in bronze: malformed, duplicate, the drop expectation "
               "it violates, or, without a day in the partitions, no readable ts / malformed without a day / "
               "before or after the partitions."),
        Column("parse_error", "string"),
        Column("value", "string"),
        Column("value_bytes", "binary"),
        Column("event_date", "date", "UTC day of ts: the day partition. Null when ts is missing or unreadable; those "
               "records, and those dated outside the partitions, are rewritten by every run."),
    ),
)
LISTENS = BRONZE["listen_events"]
ALL_BRONZE = tuple(BRONZE.values())
EVENT_TIMES = of(ALL_BRONZE, "event_timestamp")
DIM_USERS = Table(
    "silver", "dim_users", "one row per user and version of tracked attributes", None, ("userKey",),
    (
        Column("userKey", "string", sources=of(ALL_BRONZE, "userId", "level", "event_timestamp")),
        Column("userId", "string", "User id; 'Unknown' for the unknown user."),
        Column("firstName", "string", "First name during the version ('Unknown' when not sent)."),
        Column("lastName", "string", "Last name during the version ('Unknown' when not sent)."),
        Column("gender", "string", "Gender during the version ('Unknown' when not sent)."),
        Column("level", "string", "Subscription level during the version: free or paid."),
        Column("registration_time", "timestamp", "Earliest registration time the user's events carry."),
        Column("row_activation_ts", "timestamp", "Start of the version (inclusive): the first event that shows it.", EVENT_TIMES),
        Column("row_expiration_ts", "timestamp", "End of the version (exclusive): the next version's start, "
               "9999-12-31 for the current one.", EVENT_TIMES),
        Column("row_activation_date", "date", "UTC day of row_activation_ts.", EVENT_TIMES),
        Column("row_expiration_date", "date", "UTC day of row_expiration_ts.", EVENT_TIMES),
        Column("current_row", "boolean", "Whether this is the user's current version.", EVENT_TIMES),
    ),
)
DIM_LOCATION = Table(
    "silver", "dim_location", "one row per (city, stateCode, zip)", None, ("locationKey",),
    (
        Column("locationKey", "string", sources=of(LISTENS, "city", "state", "zip")),
        Column("city", "string", "City of listens; 'Unknown' for the unknown location."),
        Column("stateCode", "string", "Two-letter US state code.", of(LISTENS, "state")),
        Column("stateName", "string", "State name from state_codes.csv; 'NA' when the code is not there.", of(LISTENS, "state")),
        Column("zip", "string", "ZIP code (may be null)."),
        Column("latitude", "double", "Smallest latitude the location's listens carry."),
        Column("longitude", "double", "Longitude paired with that latitude."),
    ),
)
DIM_SONGS = Table(
    "silver", "dim_songs", "one row per song_id of songs.csv", None, ("songKey",),
    (
        Column("songKey", "string"),
        Column("songId", "string", "song_id of songs.csv (Million Song Dataset)."),
        Column("title", "string", "Song title."),
        Column("artistName", "string", "artist_name of songs.csv, as written there."),
        Column("artistId", "string", "artist_id of songs.csv."),
        Column("duration", "double", "Song length in seconds."),
        Column("key", "int", "Estimated musical key, 0 = C .. 11 = B."),
        Column("keyConfidence", "double", "Confidence of the key estimate."),
        Column("loudness", "double", "Overall loudness in dB."),
        Column("songHotness", "double", "song_hotttnesss of songs.csv."),
        Column("tempo", "double", "Estimated tempo in BPM."),
        Column("year", "int", "Release year."),
    ),
)
DIM_ARTISTS = Table(
    "silver", "dim_artists", "one row per cleaned artist name", None, ("artistKey",),
    (
        Column("artistKey", "string"),
        Column("artistId", "string", "Smallest artist_id of songs.csv under the name."),
        Column("name", "string", "Artist name without double quotes and backslashes: how listens match it."),
        Column("location", "string", "artist_location of songs.csv (the largest under the name)."),
        Column("latitude", "double", "Latitude of the artist's location (the largest under the name)."),
        Column("longitude", "double", "Longitude of the artist's location (the largest under the name)."),
    ),
)
DIM_DATETIME = Table(
    "silver", "dim_datetime", "one row per UTC hour of the partitions' range", None, ("dateKey",),
    (
        Column("dateKey", "bigint"),
        Column("datetime", "timestamp", "Start of the UTC hour."),
        Column("dayOfWeek", "int", "Day of the week, 1 = Sunday .. 7 = Saturday."),
        Column("dayOfMonth", "int", "Day of the month."),
        Column("dayOfYear", "int", "Day of the year."),
        Column("month", "int", "Month (1-12)."),
        Column("year", "int", "Year."),
        Column("weekendFlag", "boolean", "True on Saturday and Sunday."),
    ),
)
DIMENSIONS = (DIM_USERS, DIM_LOCATION, DIM_SONGS, DIM_ARTISTS, DIM_DATETIME)
KAFKA_KEY = ("kafka_topic", "kafka_partition", "kafka_offset")
FACT_STREAM = Table(
    "gold", "fact_stream", "one row per bronze listen", "date_part", KAFKA_KEY,
    (
        Column("userKey", "string", "Key of the dim_users version valid at the listen's time (the unknown user when none).",
               of(DIM_USERS, "userKey") + of(LISTENS, "userId", "event_timestamp")),
        Column("artistKey", "string", "Key of the artist whose cleaned name is the listen's (the unknown artist when none).",
               of(DIM_ARTISTS, "artistKey", "name") + of(LISTENS, "artist")),
        Column("songKey", "string", "Key of the song with the listen's title and artist (the unknown song when none).",
               of(DIM_SONGS, "songKey", "title", "artistName") + of(LISTENS, "song", "artist")),
        Column("dateKey", "bigint", sources=of(LISTENS, "event_timestamp")),
        Column("locationKey", "string", "Key of the listen's (city, state, zip) (the unknown location when none).",
               of(DIM_LOCATION, "locationKey") + of(LISTENS, "city", "state", "zip")),
        Column("timestamp", "timestamp", sources=of(LISTENS, "event_timestamp")),
        Column("date_part", "date", sources=of(LISTENS, "event_timestamp")),
        *KAFKA_COLUMNS[:3],
    ),
)
WIDE_FACT = Table(
    "gold", "wide_fact", "one row per fact_stream row, with every dimension's attributes", "date_part", KAFKA_KEY,
    (
        *(Column(k, t, sources=of(FACT_STREAM, k)) for k, t in (
            ("userKey", "string"), ("artistKey", "string"), ("songKey", "string"), ("dateKey", "bigint"), ("locationKey", "string")
        )),
        Column("timestamp", "timestamp"),
        Column("firstName", "string", "User's first name in the version."),
        Column("lastName", "string", "User's last name in the version."),
        Column("gender", "string", "User's gender in the version."),
        Column("level", "string", "User's subscription level in the version: free or paid."),
        Column("userId", "string"),
        Column("songDuration", "double", "Song length in seconds.", of(DIM_SONGS, "duration")),
        Column("songName", "string", "Song title.", of(DIM_SONGS, "title")),
        Column("city", "string", "City of the listen's location."),
        Column("state", "string", "Two-letter state code of the listen's location.", of(DIM_LOCATION, "stateCode")),
        Column("latitude", "double", "Latitude of the listen's location.", of(DIM_LOCATION, "latitude")),
        Column("longitude", "double", "Longitude of the listen's location.", of(DIM_LOCATION, "longitude")),
        Column("dateHour", "timestamp", "Start of the listen's UTC hour.", of(DIM_DATETIME, "datetime")),
        Column("dayOfMonth", "int", "Day of the month of the listen."),
        Column("dayOfWeek", "int", "Day of the week of the listen, 1 = Sunday .. 7 = Saturday."),
        Column("artistName", "string", "Cleaned artist name.", of(DIM_ARTISTS, "name")),
        Column("date_part", "date"),
        *KAFKA_COLUMNS[:3],
    ),
)
DAILY_USER_SUMMARY = Table(
    "gold", "daily_user_summary", "one row per (date_part, userId, firstName, lastName, level)", "date_part",
    ("date_part", "userId", "firstName", "lastName", "level"),
    (
        Column("date_part", "date"),
        Column("userId", "string"),
        Column("firstName", "string"),
        Column("lastName", "string"),
        Column("level", "string"),
        Column("total_streams", "bigint", sources=of(WIDE_FACT, *KAFKA_KEY)),
        Column("unique_songs", "bigint", sources=of(WIDE_FACT, "songKey")),
        Column("unique_artists", "bigint", sources=of(WIDE_FACT, "artistKey")),
    ),
)
DAILY_LOCATION_SUMMARY = Table(
    "gold", "daily_location_summary", "one row per (date_part, city, state)", "date_part", ("date_part", "city", "state"),
    (
        Column("date_part", "date"),
        Column("city", "string"),
        Column("state", "string"),
        Column("total_streams", "bigint", sources=of(WIDE_FACT, *KAFKA_KEY)),
        Column("unique_users", "bigint", sources=of(WIDE_FACT, "userId")),
        Column("unique_songs", "bigint", sources=of(WIDE_FACT, "songKey")),
    ),
)
ARTIST_POPULARITY = Table(
    "gold", "artist_popularity", "one row per artistName, all time", None, ("artistName",),
    (
        Column("artistName", "string", "Cleaned artist name ('Unknown' for listens of no known artist)."),
        Column("total_streams", "bigint", sources=of(WIDE_FACT, *KAFKA_KEY)),
        Column("unique_users", "bigint", sources=of(WIDE_FACT, "userId")),
        Column("unique_songs", "bigint", sources=of(WIDE_FACT, "songKey")),
        Column("active_days", "bigint", "Distinct days with a listen of the artist.", of(WIDE_FACT, "date_part")),
    ),
)

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

# The operations' own table: appended by every step above, not computed from them.
QUALITY_LOG = Table(
    "ops", "quality_log", "one row per check evaluation, quarantine tally (day, reason) or table written, per step of a run",
    None, ("run_id", "step", "kind", "asset", "partition_key", "name"),
    (
        Column("logged_at", "timestamp", "When the step appended the row (UTC)."),
        Column("run_id", "string", "The Dagster run."),
        Column("step", "string", "The step of the run that wrote the table and evaluated the check."),
        Column("kind", "string", "check (a check evaluation), quarantine (rows of a day kept out of bronze for a reason) "
               "or rows (a table the step wrote: rows in and out)."),
        Column("asset", "string", "The table's asset key, layer/name."),
        Column("partition_key", "string", "The day partition (YYYY-MM-DD); null for an undivided table or a whole write."),
        Column("name", "string", "The check's name, the reject reason, or 'rows'."),
        Column("passed", "boolean", "Whether the check passed; null for other kinds."),
        Column("severity", "string", "ERROR (a blocking check) or WARN; null for other kinds."),
        Column("failed_rows", "bigint", "Rows (or the check's unit) that failed the check, or were rejected for the reason."),
        Column("total_rows", "bigint", "Rows the check looked at; the day's raw records (quarantine); rows written (rows)."),
        Column("metadata", "string", "Everything else the step reported with it, as a JSON object (rows_in, table_rows, "
               "fields, sample, ...)."),
    ),
)

# Every table with its asset: the pipeline's and the quality log.
TABLES_BY_KEY: dict[AssetKey, Table] = {t.asset_key: t for t in (*ALL_TABLES, QUALITY_LOG)}
