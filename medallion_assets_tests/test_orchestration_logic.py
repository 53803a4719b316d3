"""Orchestration without a JVM or a broker: definitions, partitions, schedules, runs and raw_to_gold_sensor.

raw_to_gold_sensor is ticked against a real ephemeral Dagster instance holding reported
materializations; nothing here starts Spark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    MetadataValue,
    asset,
    build_schedule_context,
    build_sensor_context,
    job,
    materialize,
    op,
)

from medallion_assets.definitions import all_assets, defs
from medallion_assets.orchestration.jobs import (
    DAEMON_LOOK_S,
    NOT_FINISHED_STATUSES,
    SENSOR_INTERVAL_S,
    WRITES_TAG,
    downstream_job,
    ingest_job,
    medallion_job,
)
from medallion_assets.orchestration.freshness import DAILY_GOLD_FRESHNESS, RAW_FRESHNESS
from medallion_assets.orchestration.maintenance import SAFE_RETENTION_HOURS, maintenance_job
from medallion_assets.orchestration.pools import BELOW_RAW_POOL
from medallion_assets.orchestration.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITIONS_START_DATE,
    STALE_FACT_DAYS,
    contiguous_ranges,
    daily_partitions,
    partition_bounds,
    range_tags,
)
from medallion_assets.orchestration.schedules import daily_schedule, weekly_maintenance_schedule
from medallion_assets.orchestration.sensors.raw_to_gold import (
    daily_assets_below_raw,
    raw_to_gold_sensor,
    reference_assets,
    reference_due,
)
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runs import days_run
from medallion_assets.sources import SONGS_CSV
from medallion_assets.tables import ALL_TABLES, DIM_ARTISTS, DIM_DATETIME, DIM_SONGS, DIM_USERS, QUALITY_LOG, RAW

pytestmark = pytest.mark.fast

REPO = Path(__file__).resolve().parents[1]
D1, D2, D3, D4 = (date(2024, 3, day) for day in (1, 2, 3, 4))
LATE = date(2018, 10, 5)  # an old day inside the partitions
BEFORE = date(2017, 6, 1)  # before the first partition
FIRST_DAY = date.fromisoformat(PARTITIONS_START_DATE)

# Source of truth for the daily assets below raw: runtime.table_asset_args gives the daily
# partitions to every table with a partition column outside raw.
DAILY_BELOW_RAW = sorted(
    (t.asset_key for t in ALL_TABLES if t.layer != "raw" and t.partition_column), key=lambda k: k.to_user_string()
)
RAW_KEYS = {t.asset_key for t in RAW.values()}
# The dimensions no Kafka record reaches: the songs file's and the calendar.
REFERENCE_DIMENSIONS = {DIM_SONGS.asset_key, DIM_ARTISTS.asset_key, DIM_DATETIME.asset_key}


# --------------------------------------------------------------------------- #
# Definitions
# --------------------------------------------------------------------------- #


def test_definitions_load_and_wire_every_job_sensor_and_schedule():
    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {s.name for s in repo.sensor_defs} == {"kafka_offsets_sensor", "raw_to_gold_sensor", "reference_files_sensor"}
    assert {s.name for s in repo.schedule_defs} == {"daily_schedule", "weekly_maintenance_schedule", "hourly_quality_log_schedule"}
    assert {"ingest_job", "medallion_job", "downstream_job", "maintenance_job", "quality_log_job", "rollback_job"} <= set(repo.job_names)
    for name in ("kafka_offsets_sensor", "raw_to_gold_sensor"):
        # below the daemon's look, or the sensor skips every other one and a batch waits twice as long
        assert repo.get_sensor_def(name).minimum_interval_seconds == SENSOR_INTERVAL_S < DAEMON_LOOK_S
    assert repo.get_sensor_def("raw_to_gold_sensor").job_name == "downstream_job"
    # One asset per table of tables.ALL_TABLES, each with a backfill policy (single-run ranges), and the quality log.
    materializable = {key: a for key, a in repo.assets_defs_by_key.items() if a.is_materializable}
    assert set(materializable) == {t.asset_key for t in ALL_TABLES} | {QUALITY_LOG.asset_key}
    assert all(materializable[t.asset_key].backfill_policy is not None for t in ALL_TABLES)


def test_jobs_select_what_their_names_say():
    every = {t.asset_key for t in ALL_TABLES}
    assert medallion_job.selection.resolve(all_assets) == every
    assert ingest_job.selection.resolve(all_assets) == RAW_KEYS
    assert downstream_job.selection.resolve(all_assets) == every - RAW_KEYS
    assert defs.resolve_job_def("downstream_job").tags.items() >= WRITES_TAG.items()


def test_every_step_that_writes_below_raw_is_in_the_below_raw_pool():
    pools = {key: a.op.pool for a in all_assets for key in a.keys}
    # raw only appends; the quality log's step compacts and reads the log, which every step only appends to
    assert {key for key, pool in pools.items() if pool is None} == RAW_KEYS | {QUALITY_LOG.asset_key}
    assert set(pools.values()) == {None, BELOW_RAW_POOL}
    assert maintenance_job.graph.node_defs[0].pool == BELOW_RAW_POOL  # OPTIMIZE rewrites their files too


def test_dagster_cli_validates_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "JAVA_HOME": "/nonexistent"}
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(REPO / "workspace.yaml")]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


def test_importing_the_package_leaves_the_warning_filters_alone():
    script = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import medallion_assets
    from dagster import BetaWarning
    ours = [str(f) for f in warnings.filters if f[2] is BetaWarning or (f[1] is not None and "backfill" in f[1].pattern)]
print(json.dumps({"filters": ours, "backfill_warnings": sum("backfill_policy" in str(w.message) for w in caught)}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"filters": [], "backfill_warnings": 0}


def test_unfinished_statuses_are_every_status_but_the_final_and_managed_ones():
    final = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    assert set(NOT_FINISHED_STATUSES) == set(DagsterRunStatus) - final - {DagsterRunStatus.MANAGED}


# --------------------------------------------------------------------------- #
# Partitions, schedules, runs
# --------------------------------------------------------------------------- #


def test_contiguous_ranges():
    days = [date(2024, 3, 5), D1, D2, D3, D3, D4, date(2024, 3, 9)]
    assert contiguous_ranges(days) == [(D1, date(2024, 3, 5)), (date(2024, 3, 9), date(2024, 3, 9))]
    assert contiguous_ranges([]) == []
    assert contiguous_ranges([D4]) == [(D4, D4)]


def test_range_tags_and_partition_bounds():
    assert range_tags(D1, D4) == {
        "dagster/asset_partition_range_start": "2024-03-01",
        "dagster/asset_partition_range_end": "2024-03-04",
    }
    first, last = partition_bounds()
    assert first == FIRST_DAY
    assert last == datetime.now(timezone.utc).date()  # today's events reach gold today
    assert daily_partitions.get_last_partition_key() == last.isoformat()


def test_daily_schedule_covers_yesterday_and_today():
    context = build_schedule_context(scheduled_execution_time=datetime(2024, 3, 10, 0, 30, tzinfo=timezone.utc))
    data = daily_schedule.evaluate_tick(context)
    assert [r.run_key for r in data.run_requests] == ["daily-2024-03-10"]
    expected = {**range_tags(date(2024, 3, 9), date(2024, 3, 10)), "medallion/trigger": "daily_schedule"}
    assert data.run_requests[0].tags.items() >= expected.items()
    assert daily_schedule.job_name == "downstream_job" and daily_schedule.execution_timezone == "UTC"
    assert daily_schedule.cron_schedule == "30 0 * * *"


def test_daily_schedule_on_the_first_day_does_not_reach_before_the_partitions():
    at = datetime.combine(FIRST_DAY, datetime.min.time(), timezone.utc) + timedelta(minutes=30)
    data = daily_schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=at))
    assert data.run_requests[0].tags[ASSET_PARTITION_RANGE_START_TAG] == FIRST_DAY.isoformat()
    assert data.run_requests[0].tags[ASSET_PARTITION_RANGE_END_TAG] == FIRST_DAY.isoformat()


def test_weekly_maintenance_schedule():
    assert weekly_maintenance_schedule.job_name == "maintenance_job"
    assert weekly_maintenance_schedule.cron_schedule == "0 3 * * 0"
    assert weekly_maintenance_schedule.execution_timezone == "UTC"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"retention_hours": 1}, "allow_short_retention"),
        ({"tables": ["raw/nope"]}, "Unknown tables ['raw/nope']"),
    ],
)
def test_maintenance_refuses_bad_config_before_starting_spark(tmp_path, config, message):
    result = maintenance_job.execute_in_process(
        run_config={"ops": {"optimize_and_vacuum": {"config": config}}},
        resources={"spark": SparkResource(), "warehouse": WarehouseResource(root=str(tmp_path))},
        raise_on_error=False,
    )
    assert not result.success
    assert message in result.failure_data_for_node("optimize_and_vacuum").error.cause.message
    assert SAFE_RETENTION_HOURS == 168  # the documented weekly retention (docs/operations.md)


def test_materialize_days_runs_medallion_job_of_the_definitions():
    everything = days_run(D1, D2)
    assert everything.job.name == "medallion_job"
    assert everything.job is defs.resolve_job_def("medallion_job")
    assert everything.asset_selection is None  # the whole job
    assert everything.tags == range_tags(D1, D2)

    raw_only = days_run(D1, D2, AssetSelection.groups("raw"))
    assert raw_only.job.name == "medallion_job"
    assert set(raw_only.asset_selection) == RAW_KEYS
    by_name = days_run(D1, D1, ["gold/fact_stream", "silver/dim_users"])
    assert by_name.asset_selection == [AssetKey(["gold", "fact_stream"]), AssetKey(["silver", "dim_users"])]


# --------------------------------------------------------------------------- #
# raw_to_gold_sensor on a real instance
# --------------------------------------------------------------------------- #


def report_raw(instance: DagsterInstance, days: Iterable[date], topic: str = "listen_events") -> None:
    """A raw materialization (outside any run) that reports records on these days."""
    dates = MetadataValue.json([day.isoformat() for day in days])
    instance.report_runless_asset_event(AssetMaterialization(RAW[topic].asset_key, metadata={"event_dates": dates}))


def report_rebuilt(instance: DagsterInstance, day: date, keys: Iterable[AssetKey] = DAILY_BELOW_RAW) -> None:
    """Materializations of one day's partition of the given assets below raw."""
    for key in keys:
        instance.report_runless_asset_event(AssetMaterialization(key, partition=day.isoformat()))


def tick(instance: DagsterInstance, cursor: str | None = None, definitions: Definitions | None = defs):
    context = build_sensor_context(instance=instance, cursor=cursor, definitions=definitions)
    return raw_to_gold_sensor.evaluate_tick(context)


def ranges(data) -> list[tuple[date, date]]:
    """(first, last) day of each requested run."""
    return [
        (date.fromisoformat(r.tags[ASSET_PARTITION_RANGE_START_TAG]), date.fromisoformat(r.tags[ASSET_PARTITION_RANGE_END_TAG]))
        for r in data.run_requests
    ]


def raw_storage_ids(instance: DagsterInstance) -> list[int]:
    """Storage ids of every raw materialization, in order."""
    ids = []
    for key in RAW_KEYS:
        ids += [r.storage_id for r in instance.fetch_materializations(key, limit=1000).records]
    return sorted(ids)


def test_the_daily_assets_below_raw_come_from_downstream_jobs_selection():
    assert daily_assets_below_raw(defs.get_repository_def()) == DAILY_BELOW_RAW
    assert DAILY_BELOW_RAW and not RAW_KEYS & set(DAILY_BELOW_RAW)


def test_reported_days_give_one_run_per_contiguous_range_and_a_stable_key():
    instance = DagsterInstance.ephemeral()
    report_raw(instance, [D1, D2], "listen_events")
    report_raw(instance, [D4], "page_view_events")

    first = tick(instance)
    assert ranges(first) == [(D1, D2), (D4, D4)]
    keys = [r.run_key for r in first.run_requests]
    assert len(set(keys)) == 2 and all(k.startswith("raw-to-gold-") for k in keys)
    assert all(r.tags["medallion/trigger"] == "raw_to_gold_sensor" for r in first.run_requests)
    assert first.cursor == str(raw_storage_ids(instance)[-1])
    assert [r.run_key for r in tick(instance).run_requests] == keys  # a replayed tick: the same keys

    after = tick(instance, first.cursor)
    assert after.run_requests == [] and after.skip_message == "No new raw materializations"
    assert after.cursor == first.cursor

    report_raw(instance, [D2])  # later records for a day already requested: a new run, a new key
    again = tick(instance, first.cursor)
    assert ranges(again) == [(D2, D2)] and again.run_requests[0].run_key not in keys


def test_a_day_every_daily_asset_rebuilt_after_raw_is_not_requested_again():
    instance = DagsterInstance.ephemeral()
    report_raw(instance, [D1, D2, D3])
    report_rebuilt(instance, D1)  # e.g. a medallion_job or an ad-hoc run after the ingestion
    report_rebuilt(instance, D3, DAILY_BELOW_RAW[:-1])  # one asset of D3 not rebuilt: D3 is not covered
    assert ranges(tick(instance)) == [(D2, D3)]

    report_rebuilt(instance, D2)
    report_rebuilt(instance, D3)
    covered = tick(instance)
    assert covered.run_requests == []
    assert covered.skip_message == "1 raw materialization(s) brought no day to rebuild (3 day(s) already rebuilt by a later run)"
    assert covered.cursor == str(raw_storage_ids(instance)[-1])  # consumed, not held back


def test_days_whose_facts_carry_a_replaced_user_version_are_rebuilt():
    instance = DagsterInstance.ephemeral()
    report_raw(instance, [D3])
    report_rebuilt(instance, D3)
    stale = MetadataValue.json([D1.isoformat(), D2.isoformat()])  # a late event moved a version used on D1 and D2
    instance.report_runless_asset_event(AssetMaterialization(DIM_USERS.asset_key, metadata={STALE_FACT_DAYS: stale}))
    assert ranges(tick(instance)) == [(D1, D2)]
    report_rebuilt(instance, D1)
    report_rebuilt(instance, D2)
    assert tick(instance).run_requests == []  # rebuilt after dim_users reported them


def test_a_rebuild_older_than_the_raw_records_does_not_cover_them():
    instance = DagsterInstance.ephemeral()
    report_rebuilt(instance, D1)
    report_raw(instance, [D1])  # late records for D1 arrive after its last rebuild
    assert ranges(tick(instance)) == [(D1, D1)]
    report_raw(instance, [D2])
    report_rebuilt(instance, D2)
    report_raw(instance, [D2], "auth_events")  # the rebuild is between the two: D2 is not covered
    assert ranges(tick(instance)) == [(D1, D2)]


def test_reference_dimensions_are_rebuilt_only_when_due():
    instance = DagsterInstance.ephemeral()
    repository = defs.get_repository_def()
    every = downstream_job.selection.resolve(all_assets)
    assert set(reference_assets(repository)) == REFERENCE_DIMENSIONS
    report_raw(instance, [D1])
    assert tick(instance).run_requests[0].asset_selection is None  # never built: the whole job

    for key in REFERENCE_DIMENSIONS:
        instance.report_runless_asset_event(AssetMaterialization(key))
    report_raw(instance, [D2])
    (request,) = tick(instance).run_requests
    assert set(request.asset_selection) == every - REFERENCE_DIMENSIONS  # built today: left out

    instance.report_runless_asset_event(AssetObservation(SONGS_CSV.key))  # songs.csv changed since
    report_raw(instance, [D3])
    (request,) = tick(instance).run_requests
    assert set(request.asset_selection) == every - {DIM_DATETIME.asset_key}

    # Built on an earlier day: due again (the calendar ends with the day it was built).
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    assert all(reference_due(instance, repository, key, tomorrow) for key in REFERENCE_DIMENSIONS)


def test_an_ad_hoc_materialize_run_covers_its_days():
    daily_stubs = [asset(key=key, partitions_def=daily_partitions)(lambda: None) for key in DAILY_BELOW_RAW]
    instance = DagsterInstance.ephemeral()
    report_raw(instance, [D1, D2])
    result = materialize(daily_stubs, partition_key=D1.isoformat(), instance=instance)
    run = instance.get_run_by_id(result.run_id)
    assert run.job_name != "downstream_job" and run.status == DagsterRunStatus.SUCCESS
    assert ranges(tick(instance)) == [(D2, D2)]


def test_days_outside_the_partitions_are_not_requested():
    instance = DagsterInstance.ephemeral()
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=2)
    report_raw(instance, [BEFORE, tomorrow])
    outside = tick(instance)
    assert outside.run_requests == []
    assert outside.skip_message == "1 raw materialization(s) brought no day to rebuild"
    report_raw(instance, [BEFORE, LATE])
    assert ranges(tick(instance, outside.cursor)) == [(LATE, LATE)]


def ingest_while_ticking(instance: DagsterInstance, days: Iterable[date], topic: str = "listen_events"):
    """A run that materializes raw, then ticks the sensor while still running: (run result, tick)."""
    seen = []

    @op
    def ingest_and_tick(context) -> None:  # a string annotation (future import) is refused by @op
        dates = MetadataValue.json([day.isoformat() for day in days])
        context.log_event(AssetMaterialization(RAW[topic].asset_key, metadata={"event_dates": dates}))
        assert instance.get_run_by_id(context.run_id).status == DagsterRunStatus.STARTED
        seen.append(tick(context.instance))

    @job
    def running_ingestion() -> None:
        ingest_and_tick()

    result = running_ingestion.execute_in_process(instance=instance)
    return result, seen[0]


def test_raw_materializations_of_a_running_run_wait_for_its_end():
    instance = DagsterInstance.ephemeral()
    report_raw(instance, [D4])  # before the run: propagated at once
    result, waiting = ingest_while_ticking(instance, [D1])
    assert ranges(waiting) == [(D4, D4)]
    assert waiting.cursor == str(raw_storage_ids(instance)[0])  # stops before the running run's records
    ended = tick(instance, waiting.cursor)  # the run ended: its records are in raw, propagate them
    assert result.success and ranges(ended) == [(D1, D1)]


def test_an_unfinished_run_alone_is_waited_for_with_the_cursor_held():
    instance = DagsterInstance.ephemeral()
    result, waiting = ingest_while_ticking(instance, [D1], "auth_events")
    assert waiting.run_requests == [] and waiting.cursor is None
    assert waiting.skip_message == f"Waiting for run {result.run_id} to finish before propagating its raw materializations"


def test_without_a_code_location_the_sensor_skips_and_keeps_its_cursor():
    instance = DagsterInstance.ephemeral()
    report_raw(instance, [D1])
    context = build_sensor_context(instance=instance, cursor="7")
    result = raw_to_gold_sensor.evaluate_tick(context)
    assert result.run_requests == [] and "no code location" in result.skip_message
    assert result.cursor == "7"


def load_partitions_with(first_day: str) -> subprocess.CompletedProcess:
    """Load the definitions in a new process with MEDALLION_FIRST_DAY set; print the first and last partition."""
    code = "from medallion_assets.definitions import defs; from medallion_assets.orchestration.partitions import daily_partitions as d; print(d.get_first_partition_key(), len(d.get_partition_keys()))"
    env = {**os.environ, "MEDALLION_FIRST_DAY": first_day, "JAVA_HOME": "/nonexistent"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_the_first_partition_day_is_a_setting_checked_when_the_definitions_load():
    today = datetime.now(timezone.utc).date()
    week_ago = (today - timedelta(days=6)).isoformat()
    loaded = load_partitions_with(week_ago)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == [week_ago, "7"]  # six days ago through today: nothing 2,978 days behind
    assert daily_partitions.get_first_partition_key() == FIRST_DAY.isoformat() == "2018-10-01"  # the default
    for bad, reason in (("2024-13-01", "is not a day"), ((today + timedelta(days=2)).isoformat(), "is in the future")):
        refused = load_partitions_with(bad)
        assert refused.returncode != 0
        assert f"MEDALLION_FIRST_DAY={bad} {reason}" in refused.stderr


def test_raw_and_daily_gold_carry_freshness_policies_the_daemon_evaluates():
    graph = defs.resolve_asset_graph()
    policies = {key: graph.get(key).freshness_policy for key in graph.get_all_asset_keys()}
    assert {k for k, p in policies.items() if p == RAW_FRESHNESS} == RAW_KEYS
    daily_gold = {t.asset_key for t in ALL_TABLES if t.layer == "gold" and t.partition_column}
    assert {k for k, p in policies.items() if p == DAILY_GOLD_FRESHNESS} == daily_gold
    assert all(p is None for k, p in policies.items() if k not in RAW_KEYS | daily_gold)
    # the deadline falls after the daily schedule that rebuilds yesterday
    assert daily_schedule.cron_schedule == "30 0 * * *" and DAILY_GOLD_FRESHNESS.deadline_cron == "0 2 * * *"
