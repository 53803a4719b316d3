"""raw/<topic>: every Kafka record exactly once, appended by offset range."""


from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Backoff,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from medallion_assets.delta_io import append_once, commit_metadata
from medallion_assets.raw.offsets import next_offsets, plan_ranges, spark_offsets
from medallion_assets.raw.parse import empty_records, parse_records
from medallion_assets.resources.kafka import KafkaResource, spark_kafka_options
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import RAW

KAFKA_RETRY = RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL)


def build_raw_asset(topic: str) -> AssetsDefinition:
    """The raw asset of one topic."""
    table = RAW[topic]

    @asset(
        key=table.asset_key,
        group_name="raw",
        description=f"Grain: {table.grain} of topic {topic}. Appended by Kafka offset range, exactly once.",
        kinds={"spark", "delta", "kafka"},
        retry_policy=KAFKA_RETRY,
    )
    def raw_asset(
        context: AssetExecutionContext, spark: SparkResource, kafka: KafkaResource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        watermarks = kafka.end_offsets(topic)
        session = spark.session
        uri = warehouse.uri(table)
        existing = session.read.format("delta").load(uri) if DeltaTable.isDeltaTable(session, uri) else None
        ranges = plan_ranges(watermarks, next_offsets(existing))
        pending = sum(r.count for r in ranges)
        offsets = MetadataValue.json(
            {str(r.partition): {"start": r.start, "end": r.end, "expired": r.expired} for r in ranges}
        )
        base = {"records_ingested": pending, "offset_ranges": offsets, "kafka_topic": kafka.topic(topic)}
        if pending == 0:
            context.log.info(f"{kafka.topic(topic)}: no new records")
            if existing is None:  # an empty table, so downstream days of a silent topic are empty, not missing
                append_once(parse_records(empty_records(session), topic), uri, "event_date", f"raw/{kafka.topic(topic)}", 0)
            return MaterializeResult(metadata={**base, "event_dates": MetadataValue.json([])})
        starting, ending = spark_offsets(kafka.topic(topic), ranges)
        records = (
            session.read.format("kafka")
            .options(**spark_kafka_options(kafka.settings()))
            .option("subscribe", kafka.topic(topic))
            .option("startingOffsets", starting)
            .option("endingOffsets", ending)
            .load()
        )
        append_once(parse_records(records, topic), uri, "event_date", f"raw/{kafka.topic(topic)}", sum(r.end for r in ranges))
        written = session.read.format("delta").load(uri).where(
            F.expr(" OR ".join(f"(kafka_partition = {r.partition} AND kafka_offset >= {r.start})" for r in ranges))
        )
        tally = written.groupBy("event_date", F.col("parse_error").isNotNull().alias("malformed")).count().collect()
        dates = sorted({str(r["event_date"]) for r in tally if r["event_date"] is not None})
        return MaterializeResult(
            metadata={
                **commit_metadata(session, uri),
                **base,
                "event_dates": MetadataValue.json(dates),
                "malformed_records": sum(r["count"] for r in tally if r["malformed"]),
                "undated_records": sum(r["count"] for r in tally if r["event_date"] is None),
            }
        )

    return raw_asset


raw_assets = [build_raw_asset(topic) for topic in TOPICS]
