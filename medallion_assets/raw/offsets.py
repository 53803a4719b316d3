"""Offset bookkeeping of raw ingestion: what Kafka has, what raw holds, what to read next."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable


@dataclass(frozen=True)
class OffsetRange:
    """The records of one Kafka partition to ingest."""

    partition: int
    start: int  # the first offset to read
    end: int  # the offset after the last one to read
    expired: int = 0  # records before `start` that retention deleted before raw read them

    @property
    def count(self) -> int:
        """Records in the range."""
        return self.end - self.start


def partition_app_id(physical_topic: str, partition: int) -> str:
    """The Delta transaction id under which raw records how far it holds one Kafka partition."""
    return f"raw/{physical_topic}/{partition}"


def partition_transactions(physical_topic: str, ranges: Sequence[OffsetRange]) -> dict[str, int]:
    """What a raw commit of the ranges records per Kafka partition: the offset after the last record it holds."""
    return {partition_app_id(physical_topic, r.partition): r.end for r in ranges}


def in_ranges(ranges: Sequence[OffsetRange]) -> str:
    """SQL predicate selecting the raw rows of the ranges (by kafka_partition and kafka_offset)."""
    within = [f"(kafka_partition = {r.partition} AND kafka_offset >= {r.start} AND kafka_offset < {r.end})" for r in ranges if r.count]
    return " OR ".join(within) or "FALSE"


def raw_next_offsets(table: DeltaTable | None, physical_topic: str | None = None, partitions: Iterable[int] = ()) -> dict[int, int]:
    """Per Kafka partition, the offset after the highest one the raw table holds (delta-rs only, no scan).

    Every raw commit records that offset per partition as a Delta transaction, in the same commit as
    the records (partition_transactions), so it is exact under any crash. A table without them, as
    one written before they were, answers from its files' statistics when every file holds one Kafka
    partition; otherwise only the two offset columns are read. A missing table (None) holds nothing.
    """
    if table is None:
        return {}
    if physical_topic is not None:
        held = {p: table.transaction_version(partition_app_id(physical_topic, p)) for p in partitions}
        if any(v is not None for v in held.values()):
            return {p: v for p, v in held.items() if v is not None}
    stats = pa.table(table.get_add_actions(flatten=True))
    columns = ("min.kafka_partition", "max.kafka_partition", "max.kafka_offset")
    if stats.num_rows == 0:
        return {}
    if all(c in stats.column_names for c in columns):
        low, high, last = (stats.column(c) for c in columns)
        # A file without statistics, or holding several Kafka partitions, cannot answer alone.
        single = pc.fill_null(pc.and_kleene(pc.equal(low, high), pc.is_valid(last)), False)
        if pc.all(single).as_py():
            grouped = pa.table({"p": low, "o": last}).group_by("p").aggregate([("o", "max")])
            return {int(p): int(o) + 1 for p, o in zip(grouped["p"].to_pylist(), grouped["o_max"].to_pylist())}
    offsets = table.to_pyarrow_dataset().to_table(columns=["kafka_partition", "kafka_offset"])
    grouped = offsets.group_by("kafka_partition").aggregate([("kafka_offset", "max")])
    return {
        int(p): int(o) + 1
        for p, o in zip(grouped["kafka_partition"].to_pylist(), grouped["kafka_offset_max"].to_pylist())
        if p is not None and o is not None
    }


def plan_ranges(watermarks: dict[int, tuple[int, int]], stored_next: dict[int, int]) -> list[OffsetRange]:
    """Ranges from what raw holds up to the high watermark, starting no earlier than the low one."""
    ranges = []
    for partition, (low, high) in sorted(watermarks.items()):
        held = stored_next.get(partition, 0)
        start = max(held, low)
        ranges.append(OffsetRange(partition, start, max(start, high), expired=max(0, low - held)))
    return ranges


def batch_tally(added: pa.Table | None) -> Counter[tuple[date | None, bool]]:
    """Rows per (event_date, malformed) of the files one raw commit added, from their statistics
    (rows, and rows whose parse_error is null); nothing for no commit."""
    tally: Counter[tuple[date | None, bool]] = Counter()
    if added is None:
        return tally
    for day, rows, well_formed in zip(
        added["partition.event_date"].to_pylist(), added["num_records"].to_pylist(), added["null_count.parse_error"].to_pylist()
    ):
        tally[(day, False)] += well_formed
        tally[(day, True)] += rows - well_formed
    return +tally  # days without malformed (or without well-formed) rows drop out
