"""bronze/<topic>: daily partitions of distinct valid events; every other raw row counted by reason."""


from functools import reduce

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.bronze.transform import classify, to_bronze
from medallion_assets.delta_io import commit_metadata, read_table, replace_partitions
from medallion_assets.expectations import expectations_for
from medallion_assets.integrity import count_mismatch, integrity_checks_for
from medallion_assets.quality import expectation_results
from medallion_assets.raw.parse import outside_partitions, outside_partitions_predicate
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import partition_dates, table_asset_args
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import BRONZE, QUARANTINE, RAW


def build_bronze_asset(topic: str) -> AssetsDefinition:
    """The bronze asset of one topic."""
    table = BRONZE[topic]

    @asset(
        deps=[RAW[topic].asset_key],
        **table_asset_args(table, check_specs=[rule.check_spec for rule in expectations_for(table)]),
    )
    def bronze_asset(
        context: AssetExecutionContext, spark: SparkResource, kafka: KafkaResource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        session = spark.session
        days = partition_dates(context)
        raw = read_table(session, warehouse.uri(RAW[topic]), RAW[topic].path).where(F.col("event_date").isin(days))
        classified = classify(raw, topic, kafka.duration_unit).cache()
        try:
            tally = {r["reject_reason"]: r["count"] for r in classified.groupBy("reject_reason").count().collect()}
            uri = warehouse.uri(table)
            replace_partitions(to_bronze(classified, topic), uri, table.partition_column, days)
            rejected = classified.where(F.col("reject_reason").isNotNull())
            kept = session.read.format("delta").load(uri).where(F.col("event_date").isin(days))
            total = sum(tally.values())
            checks = expectation_results(table, kept, rejected, tally, total)
            metadata = {
                **commit_metadata(session, uri, days),
                "raw_records": total,
                "rejected_by_reason": MetadataValue.json({k: v for k, v in tally.items() if k is not None}),
                "days": MetadataValue.json([d.isoformat() for d in days]),
            }
        finally:
            classified.unpersist()
        return MaterializeResult(metadata=metadata, check_results=checks)

    return bronze_asset


QUARANTINE_COLUMNS = (
    "topic", "kafka_topic", "kafka_partition", "kafka_offset", "reject_reason", "parse_error", "value", "value_bytes",
    "event_date",
)


@asset(
    deps=[*[t.asset_key for t in RAW.values()], *[t.asset_key for t in BRONZE.values()]],
    **table_asset_args(QUARANTINE, check_specs=[c.check_spec for c in integrity_checks_for(QUARANTINE).values()]),
)
def quarantine(
    context: AssetExecutionContext, spark: SparkResource, kafka: KafkaResource, warehouse: WarehouseResource
) -> MaterializeResult:
    """Raw records kept out of bronze: of the run's days, and those without a partition; reconciles raw with bronze."""
    session = spark.session
    days = partition_dates(context)
    raw, bronze, rejected = [], [], []
    for topic in TOPICS:
        all_rows = read_table(session, warehouse.uri(RAW[topic]), RAW[topic].path)
        unassigned = outside_partitions(all_rows).withColumn("topic", F.lit(topic)).withColumnRenamed("reason", "reject_reason")
        rejected.append(unassigned.select(*QUARANTINE_COLUMNS))
        day_rows = all_rows.where(F.col("event_date").isin(days))
        raw.append(day_rows.groupBy("event_date").count().withColumn("topic", F.lit(topic)))
        kept = read_table(session, warehouse.uri(BRONZE[topic]), BRONZE[topic].path).where(F.col("event_date").isin(days))
        bronze.append(kept.groupBy("event_date").count().withColumn("topic", F.lit(topic)))
        tagged = classify(day_rows, topic, kafka.duration_unit).withColumn("topic", F.lit(topic))
        rejected.append(tagged.where(F.col("reject_reason").isNotNull()).select(*QUARANTINE_COLUMNS))
    uri = warehouse.uri(QUARANTINE)
    replace_partitions(
        reduce(DataFrame.unionByName, rejected), uri, QUARANTINE.partition_column, days, outside_partitions_predicate()
    )
    quarantined = session.read.format("delta").load(uri).where(F.col("event_date").isin(days))
    accounted = reduce(DataFrame.unionByName, [*bronze, quarantined.groupBy("event_date", "topic").count()])
    outcome = count_mismatch(
        reduce(DataFrame.unionByName, raw), accounted.groupBy("event_date", "topic").agg(F.sum("count").alias("count")),
        ["event_date", "topic"],
    )
    reasons = {f"{r['topic']}/{r['reject_reason']}": r["count"] for r in quarantined.groupBy("topic", "reject_reason").count().collect()}
    check = integrity_checks_for(QUARANTINE)["reconciliation"].result(outcome, rejected_by_reason=MetadataValue.json(reasons))
    return MaterializeResult(metadata=commit_metadata(session, uri, days), check_results=[check])


bronze_assets = [*[build_bronze_asset(topic) for topic in TOPICS], quarantine]
