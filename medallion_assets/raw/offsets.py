"""Offset bookkeeping of raw ingestion: what Kafka has, what raw holds, what to read next."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class OffsetRange:
    """Records [start, end) of one Kafka partition to ingest; `expired` were deleted before being read."""

    partition: int
    start: int
    end: int
    expired: int = 0

    @property
    def count(self) -> int:
        """Records in the range."""
        return self.end - self.start


def next_offsets(raw: DataFrame | None) -> dict[int, int]:
    """Per Kafka partition, the offset after the highest one raw holds."""
    if raw is None:
        return {}
    rows = raw.groupBy("kafka_partition").agg(F.max("kafka_offset").alias("last")).collect()
    return {int(r["kafka_partition"]): int(r["last"]) + 1 for r in rows}


def plan_ranges(watermarks: dict[int, tuple[int, int]], stored_next: dict[int, int]) -> list[OffsetRange]:
    """Ranges from what raw holds up to the high watermark, starting no earlier than the low one."""
    ranges = []
    for partition, (low, high) in sorted(watermarks.items()):
        held = stored_next.get(partition, 0)
        start = max(held, low)
        ranges.append(OffsetRange(partition, start, max(start, high), expired=max(0, low - held)))
    return ranges


def spark_offsets(topic: str, ranges: list[OffsetRange]) -> tuple[str, str]:
    """startingOffsets and endingOffsets JSON for Spark's Kafka batch source."""
    start = {topic: {str(r.partition): r.start for r in ranges}}
    end = {topic: {str(r.partition): r.end for r in ranges}}
    return json.dumps(start), json.dumps(end)
