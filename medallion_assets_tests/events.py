"""Hand-made events and Kafka-shaped records for tests."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from medallion_assets.raw.parse import KAFKA_RECORD_SCHEMA as RECORD_SCHEMA


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


def records(spark: SparkSession, topic: str, values: list[dict[str, Any] | bytes]) -> DataFrame:
    """Kafka-source-shaped rows on partition 0, offsets 0..n-1."""
    rows = [(topic, 0, i, datetime(2020, 1, 1), b"k", encode(v)) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, RECORD_SCHEMA)
