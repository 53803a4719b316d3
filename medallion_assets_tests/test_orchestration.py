"""Propagation after ingestion, single-run ranges from the CLI, schedules and Delta maintenance."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.compute as pc
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from dagster import (
    AssetMaterialization,
    AssetSelection,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    MetadataValue,
    build_schedule_context,
    build_sensor_context,
    materialize,
)
from dagster._cli.asset import asset_materialize_command
from dagster._core.events import StepMaterializationData
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from deltalake import DeltaTable as RsDeltaTable

from medallion_assets.definitions import all_assets, defs, resources
from medallion_assets.orchestration.jobs import downstream_job
from medallion_assets.orchestration.maintenance import maintenance_job
from medallion_assets.orchestration.partitions import contiguous_ranges
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.orchestration.schedules import daily_schedule, weekly_maintenance_schedule
from medallion_assets.orchestration.sensors.raw_to_gold import days_covered, raw_to_gold_sensor
from medallion_assets.tables import BRONZE, FACT_STREAM, RAW
from medallion_assets.topics import TOPICS, create_topics
from medallion_assets_tests.events import event

REPO = Path(__file__).resolve().parents[1]
SKIP_LIVE = os.environ.get("MEDALLION_SKIP_LIVE_TESTS") == "1"
LATE_DAY = date(2018, 10, 5)

D1, D2, D4 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 4)
LATE = date(2018, 10, 5)  # an old day inside the partitions
BEFORE = date(2017, 6, 1)  # before the first partition


def span(first: date, last: date) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}


def produce(bootstrap: str, topic: str, values: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value=json.dumps(value).encode())
    assert producer.flush(30) == 0


def tick(instance: DagsterInstance, cursor: str | None = None):
    return raw_to_gold_sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor))


def ranges(data) -> list[tuple[date, date]]:
    """(first, last) day of each requested run."""
    start, end = ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG
    return [(date.fromisoformat(r.tags[start]), date.fromisoformat(r.tags[end])) for r in data.run_requests]


def ingest(instance: DagsterInstance) -> None:
    result = materialize(all_assets, selection=AssetSelection.groups("raw"), resources=resources, instance=instance)
    assert result.success


@pytest.fixture
def live(kafka_bootstrap, spark, tmp_path, monkeypatch):
    """Topics under a fresh prefix, a warehouse and a Dagster home, all set through the environment."""
    prefix = f"o{uuid.uuid4().hex[:10]}-"
    create_topics(kafka_bootstrap, [prefix + t for t in TOPICS], partitions=2)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDALLION_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("MEDALLION_TOPIC_PREFIX", prefix)
    with DagsterInstance.get() as instance:
        yield prefix, tmp_path / "warehouse", instance


def test_ingestion_requests_runs_for_exactly_the_days_that_received_records(live, kafka_bootstrap, spark):
    prefix, root, instance = live
    listens = [
        event(f"{D1}T08:00:00", user="1", item=1),
        event(f"{D1}T09:00:00", user="2", item=1),
        event(f"{D1}T23:59:00", user="1", item=2),
        event(f"{D2}T00:01:00", user="1", item=3),
        event(f"{D2}T12:00:00", user="3", item=1),
        event(f"{D4}T12:00:00", user="3", item=2),
    ]
    produce(kafka_bootstrap, prefix + "listen_events", listens)
    produce(kafka_bootstrap, prefix + "page_view_events", [event(f"{D2}T10:00:00", user="4", page="Home")])
    ingest(instance)

    first = tick(instance)
    assert ranges(first) == [(D1, D2), (D4, D4)]
    keys = [r.run_key for r in first.run_requests]
    assert len(set(keys)) == 2
    assert [r.run_key for r in tick(instance).run_requests] == keys  # a replayed tick: same keys
    assert tick(instance, first.cursor).run_requests == []

    # The first range, launched from the CLI: one run, one Spark application, exactly its days.
    runs_before = {r.run_id for r in instance.get_runs()}
    invoked = CliRunner().invoke(
        asset_materialize_command,
        ["-m", "medallion_assets", "--select", "not group:raw", "--partition-range", f"{D1}...{D2}"],
    )
    assert invoked.exit_code == 0, invoked.output
    new_runs = [r for r in instance.get_runs() if r.run_id not in runs_before]
    assert len(new_runs) == 1 and new_runs[0].status == DagsterRunStatus.SUCCESS
    assert {k: new_runs[0].tags[k] for k in span(D1, D2)} == span(D1, D2)
    events = instance.get_records_for_run(new_runs[0].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    materialized = {e.event_log_entry.dagster_event.asset_key for e in events}
    assert materialized == set(downstream_job.selection.resolve(defs.get_repository_def().asset_graph))
    app_ids = {e.asset_materialization.metadata["spark_app_id"].value for e in events}
    assert app_ids == {spark.sparkContext.applicationId}
    fact = RsDeltaTable(str(root / FACT_STREAM.path)).to_pyarrow_dataset().to_table(columns=["date_part"])
    assert sorted(pc.value_counts(fact["date_part"]).to_pylist(), key=lambda c: c["values"]) == [
        {"values": D1, "counts": 3},
        {"values": D2, "counts": 2},
    ]
    bronze_days = RsDeltaTable(str(root / BRONZE["listen_events"].path)).to_pyarrow_dataset().to_table()["event_date"]
    assert set(bronze_days.to_pylist()) == {D1, D2}

    # That run ingested nothing: nothing new to propagate.
    assert tick(instance, first.cursor).run_requests == []

    # Late data: an old day gets its own run; a day before the partitions gets none.
    late_events = [event(f"{LATE}T10:00:00", user="5"), event(f"{BEFORE}T10:00:00", user="6")]
    produce(kafka_bootstrap, prefix + "listen_events", late_events)
    ingest(instance)
    late = tick(instance, first.cursor)
    assert ranges(late) == [(LATE, LATE)]
    assert late.run_requests[0].run_key not in keys
    raw_days = RsDeltaTable(str(root / RAW["listen_events"].path)).to_pyarrow_dataset().to_table()["event_date"]
    assert {LATE, BEFORE} <= set(raw_days.to_pylist())


def test_days_a_run_already_rebuilt_are_not_requested_again():
    downstream = frozenset(downstream_job.selection.resolve(defs.get_repository_def().asset_graph))
    raw = frozenset(t.asset_key for t in RAW.values())
    success = DagsterRunStatus.SUCCESS
    both = raw | downstream
    everything = DagsterRun(job_name="medallion_job", status=success, tags=span(D1, D2), asset_selection=both)
    assert days_covered(everything) == {D1, D2}
    assert days_covered(everything.with_status(DagsterRunStatus.FAILURE)) == set()
    ingestion_only = DagsterRun(job_name="ingest_job", status=success, tags=span(D1, D2), asset_selection=raw)
    assert days_covered(ingestion_only) == set()


def test_raw_materializations_of_a_running_ingestion_wait_for_its_end():
    instance = DagsterInstance.ephemeral()
    run = DagsterRun(job_name="ingest_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
    instance.add_run(run)
    dates = {"event_dates": MetadataValue.json([D1.isoformat()])}
    materialization = AssetMaterialization(RAW["listen_events"].asset_key, metadata=dates)
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name="ingest_job",
        event_specific_data=StepMaterializationData(materialization),
    )
    instance.report_dagster_event(event, run_id=run.run_id)
    waiting = tick(instance)
    assert waiting.run_requests == [] and run.run_id in waiting.skip_message
    assert waiting.cursor is None
    instance.report_run_failed(instance.get_run_by_id(run.run_id))  # ended: its records are in raw all the same
    assert ranges(tick(instance)) == [(D1, D1)]


def test_contiguous_ranges():
    days = [date(2024, 3, 5), D1, D2, date(2024, 3, 3), date(2024, 3, 3), D4, date(2024, 3, 9)]
    assert contiguous_ranges(days) == [(D1, date(2024, 3, 5)), (date(2024, 3, 9), date(2024, 3, 9))]
    assert contiguous_ranges([]) == []


def test_definitions_wire_sensors_schedules_and_single_run_backfills():
    repo = defs.get_repository_def()
    assert {s.name for s in repo.sensor_defs} == {"kafka_offsets_sensor", "raw_to_gold_sensor"}
    assert {s.name for s in repo.schedule_defs} == {"daily_schedule", "weekly_maintenance_schedule"}
    assert {"ingest_job", "downstream_job", "maintenance_job"} <= {j.name for j in repo.get_all_jobs()}
    assert repo.get_sensor_def("kafka_offsets_sensor").minimum_interval_seconds == 30
    graph = repo.asset_graph
    assert all(graph.get(key).backfill_policy is not None for key in graph.get_all_asset_keys())


def test_daily_schedule_covers_yesterday_and_today():
    context = build_schedule_context(scheduled_execution_time=datetime(2024, 3, 10, 0, 30, tzinfo=timezone.utc))
    data = daily_schedule.evaluate_tick(context)
    assert len(data.run_requests) == 1
    request = data.run_requests[0]
    assert request.run_key == "daily-2024-03-10"
    assert {k: request.tags[k] for k in span(D1, D2)} == span(date(2024, 3, 9), date(2024, 3, 10))
    assert daily_schedule.job_name == "downstream_job" and daily_schedule.execution_timezone == "UTC"
    assert weekly_maintenance_schedule.job_name == "maintenance_job"


def test_maintenance_compacts_small_files_and_records_what_it_did(spark, tmp_path):
    root = tmp_path / "warehouse"
    table = RAW["auth_events"]
    uri = str(root / table.path)
    for i in range(3):
        day = "date_add(date'2024-03-01', cast(id % 2 as int)) AS event_date"
        rows = spark.range(i * 20, i * 20 + 20).selectExpr("id", day)
        rows.repartition(3).write.format("delta").mode("append").partitionBy("event_date").save(uri)
    files_before = len(RsDeltaTable(uri).file_uris())
    parquet_before = len(list(Path(uri).rglob("*.parquet")))
    assert files_before >= 6

    config = {"ops": {"optimize_and_vacuum": {"config": {"retention_hours": 0, "allow_short_retention": True}}}}
    result = maintenance_job.execute_in_process(
        run_config=config, resources={"spark": SparkResource(), "warehouse": WarehouseResource(root=str(root))}
    )
    assert result.success
    after = RsDeltaTable(uri)
    assert len(after.file_uris()) < files_before
    assert len(after.file_uris()) == 2  # one file per event_date partition
    assert len(list(Path(uri).rglob("*.parquet"))) < parquet_before  # vacuumed from storage too
    data = after.to_pyarrow_dataset().to_table()
    assert sorted(data["id"].to_pylist()) == list(range(60))
    observations = result.get_asset_observation_events()
    assert [o.asset_key for o in observations] == [table.asset_key]  # the other tables do not exist yet
    metadata = {k: v.value for k, v in observations[0].event_specific_data.asset_observation.metadata.items()}
    assert metadata["files_before"] == files_before
    assert metadata["files_compacted"] == files_before
    assert metadata["files_after"] == 2
    assert metadata["files_vacuumed"] == files_before
    assert metadata["retention_hours"] == 0
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", None) in (None, "true")


def test_maintenance_refuses_a_short_retention_unless_confirmed(tmp_path):
    config = {"ops": {"optimize_and_vacuum": {"config": {"retention_hours": 1}}}}
    result = maintenance_job.execute_in_process(
        run_config=config,
        resources={"spark": SparkResource(), "warehouse": WarehouseResource(root=str(tmp_path))},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("optimize_and_vacuum")
    assert "allow_short_retention" in failure.error.cause.message


def fact_rows_of(fact: Path, day: date) -> int:
    """Rows of gold/fact_stream for one day (delta-rs), 0 while the table does not exist."""
    if not any((fact / "_delta_log").glob("*.json")):
        return 0
    return RsDeltaTable(str(fact)).to_pyarrow_dataset().to_table(columns=["date_part"])["date_part"].to_pylist().count(day)


def wait_for(condition, process: subprocess.Popen, log: Path, what: str, timeout_s: float = 600) -> float:
    """Seconds until condition() holds while the process lives; fails with the log's tail otherwise."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        assert process.poll() is None, log.read_text()[-3000:]
        if condition():
            return time.monotonic() - started
        time.sleep(3)
    pytest.fail(f"{what} not seen after {timeout_s} s:\n{log.read_text()[-3000:]}")


def webserver_answers(port: int) -> bool:
    """Whether the Dagster webserver serves its info endpoint."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.live
@pytest.mark.skipif(SKIP_LIVE, reason="MEDALLION_SKIP_LIVE_TESTS=1")
@pytest.mark.timeout(1200)
def test_the_daemon_ingests_and_propagates_to_gold(kafka_bootstrap, tmp_path):
    prefix = f"l{uuid.uuid4().hex[:10]}-"
    create_topics(kafka_bootstrap, [prefix + t for t in TOPICS], partitions=2)
    produce(kafka_bootstrap, prefix + "listen_events", [event(f"{D1}T0{h}:00:00", user=str(h)) for h in range(1, 4)])
    home, root = tmp_path / "home", tmp_path / "warehouse"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MEDALLION_WAREHOUSE": str(root),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEDALLION_TOPIC_PREFIX": prefix,
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "dagster-dev.log"
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")]
    with open(log, "w") as out:
        dev = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    fact = root / FACT_STREAM.path
    try:
        wait_for(lambda: webserver_answers(port), dev, log, "the webserver", timeout_s=180)
        first = wait_for(lambda: fact_rows_of(fact, D1) == 3, dev, log, f"3 fact rows for {D1}")
        produce(kafka_bootstrap, prefix + "listen_events", [event(f"{LATE_DAY}T12:00:00", user="9")])
        late = wait_for(lambda: fact_rows_of(fact, LATE_DAY) == 1, dev, log, f"the late fact row for {LATE_DAY}")
        print(f"produce -> gold: {first:.0f} s for new events, {late:.0f} s for a late event")
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(10)
    assert fact_rows_of(fact, D1) == 3
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
    ingest = [r for r in runs if r.job_name == "ingest_job"]
    assert len(ingest) == 2 and {r.tags["medallion/lag.listen_events"] for r in ingest} == {"3", "1"}

