"""bronze/<topic>: daily partitions of distinct valid events; every other raw row counted by reason."""


from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pyspark.sql import functions as F

from medallion_assets.bronze.transform import classify, to_bronze
from medallion_assets.delta_io import commit_metadata, read_table, replace_partitions
from medallion_assets.expectations import expectations_for
from medallion_assets.partitions import daily_partitions
from medallion_assets.quality import expectation_results
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import partition_dates
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import BRONZE, RAW


def build_bronze_asset(topic: str) -> AssetsDefinition:
    """The bronze asset of one topic."""
    table = BRONZE[topic]

    @asset(
        key=table.asset_key,
        deps=[RAW[topic].asset_key],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="bronze",
        description=f"Grain: {table.grain}. Key: {', '.join(table.key)}.",
        kinds={"spark", "delta"},
        check_specs=[rule.check_spec for rule in expectations_for(table)],
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
                **commit_metadata(session, uri),
                "raw_records": total,
                "rejected_by_reason": MetadataValue.json({k: v for k, v in tally.items() if k is not None}),
                "days": MetadataValue.json([d.isoformat() for d in days]),
            }
        finally:
            classified.unpersist()
        return MaterializeResult(metadata=metadata, check_results=checks)

    return bronze_asset


bronze_assets = [build_bronze_asset(topic) for topic in TOPICS]
