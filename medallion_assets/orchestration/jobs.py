"""Jobs over the asset graph."""

from dagster import AssetSelection, DagsterRunStatus, define_asset_job

from medallion_assets.sources import REFERENCE_CSVS

# Runs with this tag rewrite the tables below raw. The queue holds them to one at a time through the
# below-raw concurrency pool of their steps (orchestration/pools.py); the tag names them in the UI and
# in run filters.
WRITES_TAG = {"medallion/writes": "below-raw"}

# Statuses of a run that is queued, starting, running or being canceled: it may still write.
NOT_FINISHED_STATUSES: tuple[DagsterRunStatus, ...] = (
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.SUSPENDED,
    DagsterRunStatus.CANCELING,
)

# How often Dagster's sensor daemon looks at its sensors (its loop; not a setting).
DAEMON_LOOK_S = 5

# The shortest interval between two ticks of the sensors that launch these jobs. They read Kafka
# watermarks and the event log, never Spark, so ticking often is cheap. An interval of DAEMON_LOOK_S
# or more makes a sensor skip every other look (the previous tick began just under that long
# before), so new events would wait up to twice as long for their run. Below it, these sensors tick
# on every look of the daemon.
SENSOR_INTERVAL_S = 1

# Runs with this tag ingest from Kafka: kafka_offsets_sensor asks for no other while one is queued or running.
INGESTS_TAG = {"medallion/ingests": "kafka"}

ingest_job = define_asset_job(
    "ingest_job", selection=AssetSelection.groups("raw"), description="Append new Kafka records to raw.", tags=INGESTS_TAG
)

# The tables of the pipeline; the ops group (the quality log every step appends to) has jobs of its own.
PIPELINE = AssetSelection.all() - AssetSelection.groups("ops")

medallion_job = define_asset_job(
    "medallion_job",
    selection=PIPELINE,
    description="Kafka -> raw -> bronze -> silver -> gold for a day or a range of days, in one Spark session.",
)

downstream_job = define_asset_job(
    "downstream_job",
    selection=PIPELINE - AssetSelection.groups("raw"),
    description="Rebuild bronze, silver and gold from raw for a day or a range of days, in one Spark session.",
    tags=WRITES_TAG,
)

quality_log_job = define_asset_job(
    "quality_log_job",
    selection=AssetSelection.groups("ops"),
    description="Compact ops/quality_log and audit the last day's runs against the event log.",
)

observe_reference_job = define_asset_job(
    "observe_reference_job",
    selection=AssetSelection.assets(*(csv.key for csv in REFERENCE_CSVS)),
    description="Record each reference CSV's content hash as its data version.",
)
