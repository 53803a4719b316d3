"""Raw's two engines: the same offset plan in, the same rows and per-partition Delta transactions out.

- arrow: librdkafka reads the ranges in the run's process, DuckDB parses, delta-rs appends every
  partition's records in one commit that records each partition's transaction. No JVM: the engine
  when Spark is local, where starting a JVM would cost more than the copy.
- spark: Spark's Kafka source reads each partition's range on the executors, in read tasks of at
  most `records_per_read_task` records; the same parse runs in Spark's Python workers
  (`mapInArrow`); Spark's Delta writer appends each Kafka partition's records in a commit of its
  own that records that partition's transaction (a write carries one). The engine of a cluster or
  Spark Connect: ingestion grows with the executors.

Either engine continues where the other stopped: both plan from, and record, the transaction
`raw/<topic>/<partition>` = the offset after the last record held. Both are DataFrame API and
Delta writer options only, so they work over Spark Connect.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from queue import Full, Queue
from typing import TypeVar

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_assets.quality.checks import SAMPLE_ROWS, sample, sample_rows
from medallion_assets.raw.days import outside_partitions, outside_partitions_predicate, outside_reason, outside_rows
from medallion_assets.raw.offsets import OffsetRange, in_ranges, partition_app_id, partition_transactions
from medallion_assets.raw.parse import parse_record_batches, parse_records
from medallion_assets.resources.kafka import KafkaResource, RawEngine
from medallion_assets.resources.spark import JobCount
from medallion_assets.resources.warehouse import Commit, WarehouseResource
from medallion_assets.tables import RAW

T = TypeVar("T")


@dataclass(frozen=True)
class Ingested:
    """What one engine wrote of a batch: its commits (one per write; a write that found its range held
    already made none), a way to sample the batch's rows outside the daily partitions, and the count
    of the Spark jobs it launches (None on the Arrow path, which launches none)."""

    commits: list[Commit]
    outside_sample: Callable[[], list[dict[str, object]]]
    jobs: JobCount | None = None

    def spark_jobs(self) -> int | None:
        """The Spark jobs launched so far (0 without Spark; None when Spark Connect cannot count them)."""
        return self.jobs.stop() if self.jobs is not None else 0

    @property
    def made(self) -> list[Commit]:
        """The writes that made a commit."""
        return [c for c in self.commits if c.version is not None]

    def report(self, warehouse: WarehouseResource, topic: str) -> Commit:
        """One commit for the asset's report: the last one made, with every commit's rows written."""
        if not self.made:
            return warehouse.unchanged(RAW[topic])
        last = max(self.made, key=lambda c: c.version or 0)
        return replace(last, rows_written=sum(c.rows_written for c in self.made))


def ingest(
    engine: RawEngine, kafka: KafkaResource, warehouse: WarehouseResource, topic: str, ranges: list[OffsetRange], at: datetime
) -> Ingested:
    """The ranges' records of a topic appended to its raw table, exactly once, on `engine`."""
    return (ingest_with_spark if engine == "spark" else ingest_with_arrow)(kafka, warehouse, topic, ranges, at)


# -- arrow: librdkafka, DuckDB, delta-rs --------------------------------------------------------------


def ingest_with_arrow(
    kafka: KafkaResource, warehouse: WarehouseResource, topic: str, ranges: list[OffsetRange], at: datetime
) -> Ingested:
    """One pass from Kafka to Delta in this process, one commit for every partition."""
    examples: list[pa.Table] = []
    batches = parsed_batches(kafka, topic, ranges, at, examples)
    commit = warehouse.append_once(RAW[topic], batches, partition_transactions(kafka.topic(topic), ranges))
    return Ingested([commit], partial(outside_examples, examples))


def parsed_batches(
    kafka: KafkaResource, topic: str, ranges: list[OffsetRange], ingested_at: datetime, examples: list[pa.Table]
) -> pa.RecordBatchReader:
    """The ranges' records as raw rows, read and parsed a chunk at a time as the writer pulls them; the
    first rows outside the daily partitions are kept in `examples`."""
    schema = RAW[topic].arrow_schema()

    def chunks() -> Iterator[pa.RecordBatch]:
        for records in prefetched(kafka.read_records(topic, {r.partition: (r.start, r.end) for r in ranges})):
            rows = parse_records(records, topic, ingested_at)
            if sum(t.num_rows for t in examples) < SAMPLE_ROWS:
                examples.append(outside_rows(rows).slice(0, SAMPLE_ROWS))
            yield from rows.to_batches()

    return pa.RecordBatchReader.from_batches(schema, chunks())


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The items, produced by a thread of their own up to `depth` ahead, so reading Kafka overlaps with
    parsing and writing (both native code, which release the GIL); the producer's error is raised here."""
    queue: Queue[tuple[bool, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[bool, object]) -> bool:
        """Queue an entry unless the consumer has stopped."""
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
            offer((False, None))
        except BaseException as error:  # handed to the consumer, which raises it
            offer((False, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="raw-kafka-read", daemon=True)
    producer.start()
    try:
        while True:
            more, item = queue.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        producer.join()


def outside_examples(examples: list[pa.Table]) -> list[dict[str, object]]:
    """Up to five outside rows with their reason, partition, offset and message."""
    rows = [r for table in examples for r in table.select(["event_date", "parse_error", "kafka_partition", "kafka_offset", "value"]).to_pylist()]
    return sample_rows(
        [
            {"reason": outside_reason(r["event_date"], r["parse_error"] is not None), **{k: r[k] for k in ("kafka_partition", "kafka_offset", "value")}}
            for r in rows
        ]
    )


# -- spark: Spark's Kafka source and Delta writer on the executors ------------------------------------


def ingest_with_spark(
    kafka: KafkaResource, warehouse: WarehouseResource, topic: str, ranges: list[OffsetRange], at: datetime
) -> Ingested:
    """Each Kafka partition's range read, parsed and appended by Spark, in a commit of its own; the
    partitions' writes run side by side, so all their read tasks reach the executors at once."""
    table, session = RAW[topic], warehouse.session
    jobs = JobCount.start(session, f"raw ingestion of {kafka.topic(topic)}")
    pending = [r for r in ranges if r.count]

    def write(r: OffsetRange) -> Commit:
        jobs.join()
        return warehouse.append_once_with_spark(
            table, spark_rows(kafka, session, topic, r, at), partition_app_id(kafka.topic(topic), r.partition), r.end
        )

    commits = []
    if pending and not warehouse.exists(table):  # one write creates the table, the others then append to it
        commits.append(write(pending.pop(0)))
    with ThreadPoolExecutor(max_workers=max(1, len(pending)), thread_name_prefix="raw-spark-write") as pool:
        commits += list(pool.map(write, pending))

    def outside_sample() -> list[dict[str, object]]:
        """Up to five outside rows of the batch, read back from their few partitions (no day, out of range)."""
        batch = warehouse.read(table).where(outside_partitions_predicate()).where(in_ranges(ranges))
        return sample(outside_partitions(batch).select("reason", "kafka_partition", "kafka_offset", "value"))

    return Ingested(commits, outside_sample, jobs)


def spark_rows(kafka: KafkaResource, session: SparkSession, topic: str, r: OffsetRange, at: datetime) -> DataFrame:
    """One Kafka partition's range as raw rows: read by Spark's Kafka source, parsed in its Python workers."""
    physical = kafka.topic(topic)
    starting, ending = (json.dumps({physical: {str(r.partition): offset}}) for offset in (r.start, r.end))
    records = kafka.read_batch(session, topic, starting, ending, partitions=[r.partition])
    rows = records.mapInArrow(partial(parse_record_batches, topic, at), RAW[topic].ddl())
    # Over Spark Connect a client-given schema's strings arrive with an explicit collation, which Delta
    # then records as `string collate UTF8_BINARY`, a type delta-rs cannot read; a cast gives plain `string`.
    return rows.select(*(F.col(c.name).cast(c.type) for c in RAW[topic].columns))
