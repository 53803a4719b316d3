"""reference_files_sensor: observe the reference CSVs again when their content changes."""

from __future__ import annotations

import hashlib
import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from medallion_assets.orchestration.jobs import observe_reference_job
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.sources import reference_versions

REFERENCE_INTERVAL_S = 60


@sensor(
    job=observe_reference_job,
    minimum_interval_seconds=REFERENCE_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Hashes songs.csv and state_codes.csv; when a hash changes, an observation run records the new "
    "data versions, and the dimensions built from the old file show as unsynced.",
)
def reference_files_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource) -> SensorResult | SkipReason:
    """One observation run per new set of file contents (the run key is their hash)."""
    try:
        versions = reference_versions(warehouse)
    except OSError as error:
        return SkipReason(f"Reference file unreadable: {error}")
    cursor = json.dumps(versions, sort_keys=True)
    if cursor == context.cursor:
        return SkipReason("Reference files unchanged")
    run_key = "observe-" + hashlib.sha256(cursor.encode()).hexdigest()[:16]
    return SensorResult(run_requests=[RunRequest(run_key=run_key)], cursor=cursor)
