"""raw/<topic>: every Kafka record exactly once, appended by offset range."""


from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetsDefinition,
    Backoff,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.delta_io import append_once, commit_metadata
from medallion_assets.integrity import Outcome, integrity_checks_for
from medallion_assets.raw.offsets import plan_ranges, raw_next_offsets, spark_offsets
from medallion_assets.raw.parse import empty_records, outside_partitions, parse_records
from medallion_assets.resources.kafka import KafkaResource, spark_kafka_options
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import table_asset_args
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import RAW, Table

KAFKA_RETRY = RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL)


def build_raw_asset(topic: str) -> AssetsDefinition:
    """The raw asset of one topic."""
    table = RAW[topic]

    @asset(
        **table_asset_args(
            table,
            description=f"Grain: {table.grain} of topic {topic}. Appended by Kafka offset range, exactly once.",
            kinds={"spark", "delta", "kafka"},
            retry_policy=KAFKA_RETRY,
            check_specs=[c.check_spec for c in integrity_checks_for(table).values()],
        )
    )
    def raw_asset(
        context: AssetExecutionContext, spark: SparkResource, kafka: KafkaResource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        watermarks = kafka.end_offsets(topic)
        session = spark.session
        uri = warehouse.uri(table)
        existing = DeltaTable.isDeltaTable(session, uri)
        ranges = plan_ranges(watermarks, raw_next_offsets(uri))  # Delta file statistics, no table scan
        pending = sum(r.count for r in ranges)
        offsets = MetadataValue.json(
            {str(r.partition): {"start": r.start, "end": r.end, "expired": r.expired} for r in ranges}
        )
        base = {"records_ingested": pending, "offset_ranges": offsets, "kafka_topic": kafka.topic(topic)}
        if pending == 0:
            context.log.info(f"{kafka.topic(topic)}: no new records")
            if not existing:  # an empty table, so downstream days of a silent topic are empty, not missing
                append_once(parse_records(empty_records(session), topic), uri, "event_date", f"raw/{kafka.topic(topic)}", 0)
            return MaterializeResult(
                metadata={**base, "event_dates": MetadataValue.json([])},
                check_results=[outside_partitions_result(table, session.read.format("delta").load(uri))],
            )
        starting, ending = spark_offsets(kafka.topic(topic), ranges)
        records = (
            session.read.format("kafka")
            .options(**spark_kafka_options(kafka.settings()))
            .option("subscribe", kafka.topic(topic))
            .option("startingOffsets", starting)
            .option("endingOffsets", ending)
            .option("minPartitions", session.conf.get("spark.sql.shuffle.partitions"))
            .load()
        )
        parsed = parse_records(records, topic).cache()
        try:
            tally = parsed.groupBy("event_date", F.col("parse_error").isNotNull().alias("malformed")).count().collect()
            append_once(parsed, uri, "event_date", f"raw/{kafka.topic(topic)}", sum(r.end for r in ranges))
        finally:
            parsed.unpersist()
        table_rows = session.read.format("delta").load(uri)
        return MaterializeResult(
            check_results=[outside_partitions_result(table, table_rows)],
            metadata={
                **commit_metadata(session, uri),
                **base,
                "dagster/row_count": table_rows.count(),
                "event_dates": MetadataValue.json(sorted({str(r["event_date"]) for r in tally if r["event_date"]})),
                "malformed_records": sum(r["count"] for r in tally if r["malformed"]),
                "undated_records": sum(r["count"] for r in tally if r["event_date"] is None),
            },
        )

    return raw_asset


def outside_partitions_result(table: Table, raw: DataFrame) -> AssetCheckResult:
    """Records that no daily partition will process, by reason (a warning, never silent)."""
    outside = outside_partitions(raw)
    by_reason = {r["reason"]: r["count"] for r in outside.groupBy("reason").count().collect()}
    outcome = Outcome(sum(by_reason.values()), raw.count(), outside.select("reason", "kafka_partition", "kafka_offset", "value"))
    return integrity_checks_for(table)["records_outside_partitions"].result(outcome, by_reason=MetadataValue.json(by_reason))


raw_assets = [build_raw_asset(topic) for topic in TOPICS]
