"""raw/<topic>: every Kafka record exactly once, appended by offset range, without a JVM.

librdkafka reads the ranges, DuckDB parses them, delta-rs appends them: no Spark session starts,
so an ingestion run costs its records, not a JVM's start and warm-up.
"""

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from queue import Full, Queue
from typing import TypeVar

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Backoff,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
)

from medallion_assets.orchestration.partitions import EVENT_DATES
from medallion_assets.quality.checks import SAMPLE_ROWS, Outcome, sample_rows
from medallion_assets.quality.integrity import RECORDS_OUTSIDE_PARTITIONS
from medallion_assets.raw.days import outside_reason, outside_rows
from medallion_assets.raw.offsets import OffsetRange, batch_tally, partition_transactions, plan_ranges, raw_next_offsets
from medallion_assets.raw.parse import empty_records, parse_records
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import table_asset, table_report
from medallion_assets.schemas import TOPICS
from medallion_assets.sources import TOPIC_ASSETS
from medallion_assets.tables import RAW

T = TypeVar("T")
KAFKA_RETRY = RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL)


def build_raw_asset(topic: str) -> AssetsDefinition:
    """The raw asset of one topic."""
    table = RAW[topic]
    outside_check = RECORDS_OUTSIDE_PARTITIONS[topic]

    @table_asset(
        table,
        checks=[outside_check],
        sources=[TOPIC_ASSETS[topic].key],
        description=f"Grain: {table.grain} of topic {topic}. Appended by Kafka offset range, exactly once.",
        kinds={"duckdb", "delta", "kafka"},
        retry_policy=KAFKA_RETRY,
    )
    def raw_asset(context: AssetExecutionContext, kafka: KafkaResource, warehouse: WarehouseResource) -> MaterializeResult:
        physical = kafka.topic(topic)
        watermarks = kafka.end_offsets(topic)
        ranges = plan_ranges(watermarks, raw_next_offsets(warehouse.delta_rs(table), physical, watermarks))  # the Delta log, no scan
        pending = sum(r.count for r in ranges)
        offsets = MetadataValue.json({str(r.partition): {"start": r.start, "end": r.end, "expired": r.expired} for r in ranges})
        base = {"records_ingested": pending, "offset_ranges": offsets, "kafka_topic": physical}
        if pending == 0:
            context.log.info(f"{physical}: no new records")
            if warehouse.exists(table):
                commit = warehouse.unchanged(table)
            else:  # an empty table, so downstream days of a silent topic are empty, not missing
                empty = parse_records(empty_records(), topic)
                commit = warehouse.append_once(table, pa.RecordBatchReader.from_batches(empty.schema, []), partition_transactions(physical, ranges))
            nothing = outside_check.result(Outcome(0, 0), by_reason=MetadataValue.json({}))
            return table_report(commit, [nothing], {**base, EVENT_DATES: MetadataValue.json([])})
        examples: list[pa.Table] = []
        batches = parsed_batches(kafka, topic, ranges, datetime.now(timezone.utc), examples)
        # One pass from Kafka to Delta; what the batch held per day comes from the commit's file statistics.
        commit = warehouse.append_once(table, batches, partition_transactions(physical, ranges))
        base["records_ingested"] = commit.rows_written  # 0 when a run before this one committed the ranges already
        tally = batch_tally(warehouse.added_files(commit))
        outside = Counter()
        for (day, malformed), n in tally.items():
            reason = outside_reason(day, malformed)
            if reason is not None:
                outside[reason] += n
        check = outside_check.result(
            Outcome(sum(outside.values()), pending, outside_examples(examples) if outside else None),
            by_reason=MetadataValue.json(dict(outside)),
        )
        return table_report(
            commit,
            [check],
            {
                **base,
                EVENT_DATES: MetadataValue.json(sorted({str(day) for day, _ in tally if day is not None})),
                "malformed_records": sum(n for (_, malformed), n in tally.items() if malformed),
                "undated_records": sum(n for (day, _), n in tally.items() if day is None),
            },
        )

    return raw_asset


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


raw_assets = [build_raw_asset(topic) for topic in TOPICS]
