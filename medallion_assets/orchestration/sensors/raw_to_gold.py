"""raw_to_gold_sensor: after ingestion, rebuild bronze, silver and gold for the days that got records
and that the ingesting run did not rebuild itself (a batch run of kafka_offsets_sensor rebuilds the
days of its newest records: what is left here is late data and the older days of a backlog).

A raw materialization reports the days its records fall on (metadata `event_dates`); a dim_users
materialization reports the days whose fact rows still carry the key of a user version it replaced
(metadata `stale_fact_days`: late data split or moved that version). A day D reported by a
materialization with storage id S is already covered when every daily
partitioned asset below raw has a materialization of partition D with a storage id above S:
some later run rebuilt that day from a raw that held those records, whatever launched it (this
sensor, medallion_job, the daily schedule, `dagster asset materialize`). Covered days are not
requested again; every other day inside the partitions gets one run per contiguous range.

No Kafka record reaches the dimensions of the reference files and the calendar (dim_songs,
dim_artists, dim_datetime), so a run rebuilds them only when they are due: never built, built
before today (UTC: the calendar ends with the day it was built), or an input file observed since.
The others are left out of the run's selection, which spares each batch their Spark work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AssetsDefinition,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    EventLogRecord,
    RepositoryDefinition,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from medallion_assets.orchestration.jobs import NOT_FINISHED_STATUSES, SENSOR_INTERVAL_S, downstream_job
from medallion_assets.orchestration.partitions import (
    EVENT_DATES,
    STALE_FACT_DAYS,
    contiguous_ranges,
    partition_bounds,
    range_tags,
)
from medallion_assets.tables import DIM_USERS, RAW

# The materializations that name days to rebuild, and the metadata entry that names them.
DAYS_REPORTED_BY = {**{table.asset_key: EVENT_DATES for table in RAW.values()}, DIM_USERS.asset_key: STALE_FACT_DAYS}
FETCH_LIMIT = 200
# The assets downstream_job rebuilds that no raw table feeds.
REFERENCE_ONLY = downstream_job.selection - AssetSelection.groups("raw").downstream()
TRIGGER_TAG = {"medallion/trigger": "raw_to_gold_sensor"}


@dataclass(frozen=True)
class Pending:
    """Raw materializations read by one tick: the days they report, and the cursor after them."""

    storage_ids: tuple[int, ...]
    # day -> highest storage id of a raw materialization of this tick that reports the day
    days: Mapping[date, int] = field(default_factory=dict)
    cursor: int | None = None
    waiting_for: str | None = None


def new_reporting_materializations(instance: DagsterInstance, after: int | None) -> list[EventLogRecord]:
    """Materializations of raw (and dim_users) after the cursor, in storage order, none past one a later page could hide."""
    records: list[EventLogRecord] = []
    bound = None
    for key in DAYS_REPORTED_BY:
        page = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=FETCH_LIMIT, ascending=True
        )
        records.extend(page.records)
        if page.has_more and page.records:
            last = page.records[-1].storage_id
            bound = last if bound is None else min(bound, last)
    return sorted((r for r in records if bound is None or r.storage_id <= bound), key=lambda r: r.storage_id)


def reported_days(record: EventLogRecord) -> set[date]:
    """Days a materialization asks to rebuild below raw: those its records fall on, or its stale fact days."""
    materialization = record.asset_materialization
    name = DAYS_REPORTED_BY.get(materialization.asset_key) if materialization else None
    entry = materialization.metadata.get(name) if materialization and name else None
    return {date.fromisoformat(day) for day in (entry.value if entry is not None else None) or []}


def collect(instance: DagsterInstance, after: int | None) -> Pending:
    """Days of the raw materializations of finished runs, stopping at the first unfinished run."""
    runs: dict[str, DagsterRun | None] = {}
    ids: list[int] = []
    days: dict[date, int] = {}
    cursor = after
    waiting_for = None
    for record in new_reporting_materializations(instance, after):
        run_id = record.event_log_entry.run_id
        if run_id not in runs:
            runs[run_id] = instance.get_run_by_id(run_id)
        run = runs[run_id]
        if run is not None and run.status in NOT_FINISHED_STATUSES:
            # The run may still ingest other topics: take its materializations together, once it ends.
            waiting_for = run_id
            break
        for day in reported_days(record):
            days[day] = max(days.get(day, record.storage_id), record.storage_id)
        ids.append(record.storage_id)
        cursor = record.storage_id
    return Pending(tuple(ids), days, cursor, waiting_for)


def resolved(selection: AssetSelection, repository: RepositoryDefinition) -> set[AssetKey]:
    """The keys a selection picks in the code location at hand."""
    # A multi-asset appears once per key.
    unique: dict[int, AssetsDefinition] = {id(a): a for a in repository.assets_defs_by_key.values()}
    return selection.resolve(list(unique.values()))


def daily_assets_below_raw(repository: RepositoryDefinition) -> list[AssetKey]:
    """The partitioned assets downstream_job rebuilds, resolved against the code location at hand."""
    by_key = repository.assets_defs_by_key
    keys = resolved(downstream_job.selection, repository)
    # Every partitioned asset below raw uses the daily partitions; the others are rebuilt whole by any run.
    return sorted((key for key in keys if by_key[key].partitions_def is not None), key=lambda k: k.to_user_string())


def reference_assets(repository: RepositoryDefinition) -> list[AssetKey]:
    """The assets of REFERENCE_ONLY, resolved against the code location at hand."""
    return sorted(resolved(REFERENCE_ONLY, repository), key=lambda k: k.to_user_string())


def reference_due(instance: DagsterInstance, repository: RepositoryDefinition, key: AssetKey, today: date) -> bool:
    """Whether a reference asset needs a rebuild: never materialized, last materialized before `today`
    (UTC), or one of its inputs (a reference file) observed since."""
    latest = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1).records
    if not latest:
        return True
    if datetime.fromtimestamp(latest[0].timestamp, timezone.utc).date() < today:
        return True
    return any(
        instance.fetch_observations(AssetRecordsFilter(asset_key=upstream, after_storage_id=latest[0].storage_id), limit=1).records
        for upstream in repository.assets_defs_by_key[key].asset_deps[key]
    )


def current_reference_assets(instance: DagsterInstance, repository: RepositoryDefinition, today: date) -> set[AssetKey]:
    """The reference assets that are not due."""
    return {key for key in reference_assets(repository) if not reference_due(instance, repository, key, today)}


def run_selection(repository: RepositoryDefinition, current: Collection[AssetKey]) -> list[AssetKey] | None:
    """What a run of downstream_job selects: everything (None), or everything but the `current` reference assets."""
    if not current:
        return None
    keys = resolved(downstream_job.selection, repository) - set(current)
    return sorted(keys, key=lambda k: k.to_user_string())


def rebuilt_days(instance: DagsterInstance, key: AssetKey, days: Mapping[date, int]) -> set[date]:
    """Days with a materialization of the asset's partition later than the raw one that reported the day."""
    partitions = [day.isoformat() for day in sorted(days)]
    records_filter = AssetRecordsFilter(asset_key=key, asset_partitions=partitions, after_storage_id=min(days.values()))
    rebuilt: set[date] = set()
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=FETCH_LIMIT, cursor=cursor, ascending=True)
        for record in page.records:
            day = date.fromisoformat(record.partition_key) if record.partition_key else None
            if day in days and record.storage_id > days[day]:
                rebuilt.add(day)
        if not page.has_more:
            return rebuilt
        cursor = page.cursor


def covered_days(instance: DagsterInstance, keys: Collection[AssetKey], days: Mapping[date, int]) -> set[date]:
    """Days every asset of keys already rebuilt after the raw materialization that reported them.

    One query per asset for all the days. With no asset below raw nothing counts as covered.
    """
    if not keys or not days:
        return set()
    covered = set(days)
    for key in keys:
        covered &= rebuilt_days(instance, key, {day: days[day] for day in covered})
        if not covered:
            break
    return covered


def run_requests(
    storage_ids: Sequence[int], days: Collection[date], selection: Sequence[AssetKey] | None = None
) -> list[RunRequest]:
    """One run of downstream_job (of `selection`, default all of it) per contiguous range of days, keyed
    by the materializations and range."""
    digest = hashlib.sha256(",".join(map(str, sorted(storage_ids))).encode()).hexdigest()[:12]
    return [
        RunRequest(
            run_key=f"raw-to-gold-{first.isoformat()}-{last.isoformat()}-{digest}",
            tags={**range_tags(first, last), **TRIGGER_TAG},
            asset_selection=list(selection) if selection is not None else None,
        )
        for first, last in contiguous_ranges(days)
    ]


def _listed(days: Collection[date], limit: int = 10) -> str:
    return ", ".join(day.isoformat() for day in sorted(days)[:limit]) + (" ..." if len(days) > limit else "")


@sensor(
    job=downstream_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "After each finished ingestion run, rebuilds bronze, silver and gold for every day that received "
        "records (late days included) and that no later run rebuilt yet: one run per contiguous range of days."
    ),
)
def raw_to_gold_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Runs of downstream_job for the days the raw materializations after the cursor report."""
    repository = context.repository_def
    if repository is None:
        return SkipReason("The sensor context has no code location: cannot tell which assets downstream_job rebuilds")
    after = int(context.cursor) if context.cursor else None
    pending = collect(context.instance, after)
    cursor = str(pending.cursor) if pending.cursor is not None else None
    first, last = partition_bounds()
    inside = {day: storage_id for day, storage_id in pending.days.items() if first <= day <= last}
    outside = set(pending.days) - set(inside)
    if outside:
        context.log.warning(
            f"{len(outside)} day(s) outside the partitions {first}..{last} are not propagated "
            f"(reconciliation counts their records): {_listed(outside)}"
        )
    covered = covered_days(context.instance, daily_assets_below_raw(repository), inside)
    if covered:
        context.log.info(f"{len(covered)} day(s) already rebuilt below raw by a later run: {_listed(covered)}")
    days = set(inside) - covered
    current = current_reference_assets(context.instance, repository, datetime.now(timezone.utc).date()) if days else set()
    requests = run_requests(pending.storage_ids, days, run_selection(repository, current))
    if current:
        left_out = ", ".join(sorted(k.to_user_string() for k in current))
        context.log.info(f"Left out, built today and their files unchanged since: {left_out}")
    for request in requests:
        context.log.info(f"Requesting {request.run_key}")
    if requests:
        return SensorResult(run_requests=requests, cursor=cursor)
    if pending.waiting_for:
        reason = f"Waiting for run {pending.waiting_for} to finish before propagating its raw materializations"
    elif pending.storage_ids:
        reason = f"{len(pending.storage_ids)} raw materialization(s) brought no day to rebuild"
        if covered:
            reason += f" ({len(covered)} day(s) already rebuilt by a later run)"
    else:
        reason = "No new raw materializations"
    return SensorResult(skip_reason=SkipReason(reason), cursor=cursor)
