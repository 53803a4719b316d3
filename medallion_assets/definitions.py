"""The Definitions of the code location: assets, checks, jobs and resources."""

from dagster import Definitions, in_process_executor

from medallion_assets.orchestration.jobs import downstream_job, ingest_job, medallion_job, observe_reference_job, quality_log_job
from medallion_assets.orchestration.maintenance import maintenance_job
from medallion_assets.orchestration.schedules import daily_schedule, hourly_quality_log_schedule, weekly_maintenance_schedule
from medallion_assets.orchestration.sensors import (
    KafkaSensorSettings,
    kafka_offsets_sensor,
    raw_to_gold_sensor,
    reference_files_sensor,
)
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource

from medallion_assets.bronze.assets import bronze_assets
from medallion_assets.gold.assets import gold_assets
from medallion_assets.ops.assets import ops_assets
from medallion_assets.ops.rollback import rollback_job
from medallion_assets.raw.assets import raw_assets
from medallion_assets.silver.assets import silver_assets
from medallion_assets.sources import REFERENCE_CSVS, TOPIC_ASSETS

# Each asset links to the lines of the function that computes it (runtime.code_reference).
all_assets = [*raw_assets, *bronze_assets, *silver_assets, *gold_assets, *ops_assets]
external_assets = [*TOPIC_ASSETS.values(), *REFERENCE_CSVS]

spark = SparkResource()
resources = {
    "spark": spark,
    "kafka": KafkaResource(),
    "warehouse": WarehouseResource(spark=spark),
    "kafka_sensor": KafkaSensorSettings(),
}

# Every step runs in the run's process, so one run starts one JVM and one Spark session.
defs = Definitions(
    assets=[*external_assets, *all_assets],
    jobs=[ingest_job, medallion_job, downstream_job, maintenance_job, observe_reference_job, quality_log_job, rollback_job],
    schedules=[daily_schedule, weekly_maintenance_schedule, hourly_quality_log_schedule],
    sensors=[kafka_offsets_sensor, raw_to_gold_sensor, reference_files_sensor],
    resources=resources,
    executor=in_process_executor,
)
