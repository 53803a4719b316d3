"""Schemas in one place: the Kafka event contract and the reference CSV files."""

from __future__ import annotations

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    StringType,
    StructType,
)

from medallion_assets.topics import TOPICS

# Event fields as typed in raw. Wire types vary by producer (Eventsim sends numbers where the
# seed generator sends strings), so every field is first read as JSON text, then cast.
COMMON_EVENT_FIELDS: dict[str, DataType] = {
    "ts": LongType(),
    "sessionId": LongType(),
    "userId": StringType(),
    "auth": StringType(),
    "level": StringType(),
    "itemInSession": LongType(),
    "firstName": StringType(),
    "lastName": StringType(),
    "gender": StringType(),
    "registration": LongType(),
    "city": StringType(),
    "zip": StringType(),
    "state": StringType(),
    "lat": DoubleType(),
    "lon": DoubleType(),
    "userAgent": StringType(),
}

TOPIC_EXTRA_FIELDS: dict[str, dict[str, DataType]] = {
    "page_view_events": {
        "page": StringType(),
        "method": StringType(),
        "status": LongType(),
        "artist": StringType(),
        "song": StringType(),
        "duration": DoubleType(),
    },
    "listen_events": {
        "artist": StringType(),
        "song": StringType(),
        "duration": DoubleType(),
    },
    "auth_events": {
        "success": BooleanType(),
        "method": StringType(),
        "status": LongType(),
    },
    "status_change_events": {
        "prevLevel": StringType(),
        "statusChangeType": StringType(),
        "method": StringType(),
        "status": LongType(),
    },
}

assert set(TOPIC_EXTRA_FIELDS) == set(TOPICS), "every topic of medallion_assets.topics has its fields here"

def event_fields(topic: str) -> dict[str, DataType]:
    """Typed fields of one topic's events, common fields first."""
    return {**COMMON_EVENT_FIELDS, **TOPIC_EXTRA_FIELDS[topic]}


# The JSON kinds (string, number, boolean) each field arrives as from the contract's producers: its
# type's own kind, and both for the ids (numbers from Eventsim, strings from the seed's generator).
# A value of another kind is schema drift, kept in `rescued` even when raw can still read it.
JSON_KIND_OF_TYPE: dict[str, str] = {"string": "string", "bigint": "number", "double": "number", "boolean": "boolean"}
EITHER_KIND_FIELDS = frozenset({"userId", "sessionId"})


def json_kinds(topic: str) -> dict[str, tuple[str, ...]]:
    """Per field of a topic's events, the JSON kinds the contract's producers send it as."""
    return {
        name: ("number", "string") if name in EITHER_KIND_FIELDS else (JSON_KIND_OF_TYPE[dtype.simpleString()],)
        for name, dtype in event_fields(topic).items()
    }


def ddl(schema: StructType) -> str:
    """A schema as DDL text. Over Spark Connect a StringType object reaches the server with an
    explicit collation that Delta then records as `string collate UTF8_BINARY`, which delta-rs,
    Polars and DuckDB cannot read; a type named in text stays plain `string`."""
    return ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields)


SONGS_CSV_COLUMNS: tuple[str, ...] = (
    "artist_id",
    "artist_latitude",
    "artist_location",
    "artist_longitude",
    "artist_name",
    "danceability",
    "duration",
    "energy",
    "key",
    "key_confidence",
    "loudness",
    "mode",
    "mode_confidence",
    "release",
    "song_hotttnesss",
    "song_id",
    "tempo",
    "title",
    "track_id",
    "year",
)

STATE_CODES_CSV_COLUMNS: tuple[str, ...] = ("stateCode", "stateName")
