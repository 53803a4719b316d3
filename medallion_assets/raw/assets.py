"""raw/<topic>: every Kafka record exactly once, appended by offset range, on the engine where Spark runs.

Locally (Spark `local[*]`) librdkafka reads the ranges, DuckDB parses them and delta-rs appends
them: no Spark session starts, so an ingestion run costs its records, not a JVM's start. On a
cluster or over Spark Connect, Spark's Kafka source and Delta writer do it on the executors
(raw/engines.py; the `kafka` resource's raw_engine chooses).
"""

from collections import Counter
from datetime import datetime, timezone

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
from medallion_assets.quality.checks import Outcome
from medallion_assets.quality.integrity import RECORDS_OUTSIDE_PARTITIONS
from medallion_assets.raw.days import outside_reason
from medallion_assets.raw.engines import ingest
from medallion_assets.raw.offsets import batch_tally, partition_transactions, plan_ranges, raw_next_offsets
from medallion_assets.raw.parse import empty_records, parse_records
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import table_asset, table_report
from medallion_assets.schemas import TOPICS
from medallion_assets.sources import TOPIC_ASSETS
from medallion_assets.tables import RAW

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
        engine = kafka.engine(warehouse.spark_resource.runs_locally)
        watermarks = kafka.end_offsets(topic)
        ranges = plan_ranges(watermarks, raw_next_offsets(warehouse.delta_rs(table), physical, watermarks))  # the Delta log, no scan
        pending = sum(r.count for r in ranges)
        offsets = MetadataValue.json({str(r.partition): {"start": r.start, "end": r.end, "expired": r.expired} for r in ranges})
        base = {"records_ingested": pending, "offset_ranges": offsets, "kafka_topic": physical, "raw_engine": engine}
        if pending == 0:
            context.log.info(f"{physical}: no new records")
            if warehouse.exists(table):
                commit = warehouse.unchanged(table)
            else:  # an empty table, so downstream days of a silent topic are empty, not missing
                empty = parse_records(empty_records(), topic)
                commit = warehouse.append_once(table, pa.RecordBatchReader.from_batches(empty.schema, []), partition_transactions(physical, ranges))
            nothing = outside_check.result(Outcome(0, 0), by_reason=MetadataValue.json({}))
            return table_report(commit, [nothing], {**base, EVENT_DATES: MetadataValue.json([]), "spark_jobs": 0})
        # One pass from Kafka to Delta; what the batch held per day comes from the commits' file statistics.
        ingested = ingest(engine, kafka, warehouse, topic, ranges, datetime.now(timezone.utc))
        commit = ingested.report(warehouse, topic)
        base["records_ingested"] = commit.rows_written  # 0 when a run before this one committed the ranges already
        tally = sum((batch_tally(warehouse.added_files(c)) for c in ingested.commits), Counter())
        outside = Counter()
        for (day, malformed), n in tally.items():
            reason = outside_reason(day, malformed)
            if reason is not None:
                outside[reason] += n
        check = outside_check.result(
            Outcome(sum(outside.values()), pending, ingested.outside_sample() if outside else None),
            by_reason=MetadataValue.json(dict(outside)),
        )
        jobs = ingested.spark_jobs()
        return table_report(
            commit,
            [check],
            {
                **base,
                EVENT_DATES: MetadataValue.json(sorted({str(day) for day, _ in tally if day is not None})),
                "malformed_records": sum(n for (_, malformed), n in tally.items() if malformed),
                "undated_records": sum(n for (day, _), n in tally.items() if day is None),
                "delta_commits": len(ingested.made),
                "spark_jobs": jobs if jobs is not None else MetadataValue.text("not counted over Spark Connect"),
            },
        )

    return raw_asset


raw_assets = [build_raw_asset(topic) for topic in TOPICS]
