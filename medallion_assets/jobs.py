"""Jobs over the asset graph."""

from dagster import AssetSelection, define_asset_job

ingest_job = define_asset_job(
    "ingest_job", selection=AssetSelection.groups("raw"), description="Append new Kafka records to raw."
)

medallion_job = define_asset_job(
    "medallion_job",
    selection=AssetSelection.all(),
    description="Kafka -> raw -> bronze -> silver -> gold for a day or a range of days, in one Spark session.",
)
