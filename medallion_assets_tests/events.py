"""Hand-made events and Kafka-shaped records for tests."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from medallion_assets.raw.parse import parse_records
from medallion_assets.resources.kafka import RECORD_SCHEMA


def epoch_ms(text: str) -> int:
    """Epoch milliseconds of an ISO UTC datetime."""
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def event(at: str, user: Any = "7", level: str = "free", item: int = 1, **fields: Any) -> dict[str, Any]:
    """A listen-shaped event of one user at an ISO UTC time."""
    base = {
        "ts": epoch_ms(at), "userId": user, "sessionId": 1, "itemInSession": item, "level": level,
        "auth": "Logged In", "firstName": "Ada", "lastName": "Lovelace", "gender": "F",
        "registration": epoch_ms("2018-01-01T00:00:00"), "city": "Tampa", "state": "FL", "zip": "33601",
        "lat": 27.9, "lon": -82.4, "userAgent": "test", "artist": "Artist", "song": "Song", "duration": 200.5,
    }
    return {**base, **fields}


def encode(value: dict[str, Any] | bytes) -> bytes:
    """JSON bytes of an event; bytes pass through unchanged."""
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def records(topic: str, values: list[dict[str, Any] | bytes | None]) -> pa.Table:
    """Kafka records on partition 0, offsets 0..n-1 (None: a message without a value)."""
    n = len(values)
    return pa.table(
        [
            pa.array([topic] * n), pa.array([0] * n, pa.int32()), pa.array(range(n), pa.int64()),
            pa.array([datetime(2020, 1, 1, tzinfo=timezone.utc)] * n, RECORD_SCHEMA.field("timestamp").type),
            pa.array([b"k"] * n, pa.binary()), pa.array([None if v is None else encode(v) for v in values], pa.binary()),
        ],
        schema=RECORD_SCHEMA,
    )


def raw_frame(spark: SparkSession, topic: str, values: list[dict[str, Any] | bytes]) -> DataFrame:
    """The raw rows of the values, as a Spark DataFrame."""
    return spark.createDataFrame(parse_records(records(topic, values), topic))
