"""raw_to_gold_sensor: after ingestion, rebuild bronze, silver and gold for the days that got records."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from dagster import (
    AssetRecordsFilter,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogRecord,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES, DagsterRun
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from medallion_assets.bronze.assets import bronze_assets
from medallion_assets.gold.assets import gold_assets
from medallion_assets.jobs import downstream_job
from medallion_assets.partitions import contiguous_ranges, partition_bounds, range_tags
from medallion_assets.silver.assets import silver_assets
from medallion_assets.tables import RAW

RAW_KEYS = [table.asset_key for table in RAW.values()]
DOWNSTREAM_KEYS = frozenset(key for a in (*bronze_assets, *silver_assets, *gold_assets) for key in a.keys)
FETCH_LIMIT = 200


@dataclass(frozen=True)
class Pending:
    """Raw materializations read by one tick: their days, and the cursor after them."""

    storage_ids: tuple[int, ...]
    days: frozenset[date]
    cursor: int | None
    waiting_for: str | None = None


def days_covered(run: DagsterRun) -> set[date]:
    """Days a successful run already rebuilt everywhere below raw (none when it only ingested)."""
    selection = run.asset_selection
    if run.status != DagsterRunStatus.SUCCESS or not selection or not DOWNSTREAM_KEYS <= selection:
        return set()
    tags = run.tags
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        first = date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG])
        last = date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG])
        return {first + timedelta(days=i) for i in range((last - first).days + 1)}
    if PARTITION_NAME_TAG in tags:
        return {date.fromisoformat(tags[PARTITION_NAME_TAG])}
    return set()


def new_raw_materializations(context: SensorEvaluationContext, after: int | None) -> list[EventLogRecord]:
    """Raw materializations after the cursor, in storage order, none past one a later page could hide."""
    records: list[EventLogRecord] = []
    bound = None
    for key in RAW_KEYS:
        page = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=FETCH_LIMIT, ascending=True
        )
        records.extend(page.records)
        if page.has_more and page.records:
            last = page.records[-1].storage_id
            bound = last if bound is None else min(bound, last)
    return sorted((r for r in records if bound is None or r.storage_id <= bound), key=lambda r: r.storage_id)


def collect(context: SensorEvaluationContext, after: int | None) -> Pending:
    """Days of the raw materializations of finished runs, stopping at the first unfinished run."""
    runs: dict[str, DagsterRun | None] = {}
    ids: list[int] = []
    days: set[date] = set()
    cursor = after
    waiting_for = None
    for record in new_raw_materializations(context, after):
        run_id = record.event_log_entry.run_id
        if run_id not in runs:
            runs[run_id] = context.instance.get_run_by_id(run_id)
        run = runs[run_id]
        if run is not None and run.status in NOT_FINISHED_STATUSES:
            # The run may still ingest other topics: take its materializations together, once it ends.
            waiting_for = run_id
            break
        materialization = record.asset_materialization
        entry = materialization.metadata.get("event_dates") if materialization else None
        received = {date.fromisoformat(d) for d in (entry.value if entry is not None else None) or []}
        days |= received - (days_covered(run) if run is not None else set())
        ids.append(record.storage_id)
        cursor = record.storage_id
    return Pending(tuple(ids), frozenset(days), cursor, waiting_for)


def run_requests(storage_ids: Sequence[int], days: set[date] | frozenset[date]) -> list[RunRequest]:
    """One run of downstream_job per contiguous range of days, keyed by the materializations and range."""
    digest = hashlib.sha256(",".join(map(str, sorted(storage_ids))).encode()).hexdigest()[:12]
    return [
        RunRequest(
            run_key=f"raw-to-gold-{first.isoformat()}-{last.isoformat()}-{digest}",
            tags={**range_tags(first, last), "medallion/trigger": "raw_to_gold_sensor"},
        )
        for first, last in contiguous_ranges(days)
    ]


@sensor(
    job=downstream_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "After each finished ingestion run, rebuilds bronze, silver and gold for every day that received "
        "records (late days included): one run per contiguous range of days."
    ),
)
def raw_to_gold_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Runs of downstream_job for the days the raw materializations after the cursor report."""
    after = int(context.cursor) if context.cursor else None
    pending = collect(context, after)
    cursor = str(pending.cursor) if pending.cursor is not None else None
    first, last = partition_bounds()
    inside = {d for d in pending.days if first <= d <= last}
    outside = sorted(pending.days - inside)
    if outside:
        context.log.warning(
            f"{len(outside)} day(s) outside the partitions {first}..{last} are not propagated "
            f"(reconciliation counts their records): {', '.join(d.isoformat() for d in outside[:10])}"
        )
    requests = run_requests(pending.storage_ids, inside)
    for request in requests:
        context.log.info(f"Requesting {request.run_key}")
    if requests:
        return SensorResult(run_requests=requests, cursor=cursor)
    if pending.waiting_for:
        reason = f"Waiting for run {pending.waiting_for} to finish before propagating its raw materializations"
    elif pending.storage_ids:
        reason = f"{len(pending.storage_ids)} raw materialization(s) brought no day to rebuild"
    else:
        reason = "No new raw materializations"
    return SensorResult(skip_reason=SkipReason(reason), cursor=cursor)
