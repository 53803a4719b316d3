"""Propagation after ingestion, single-run ranges from the CLI and Delta maintenance, on Spark and the broker.

The same logic without a JVM is in test_orchestration_logic.py (the fast tier).
"""

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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.compute as pc
import pytest
from confluent_kafka import Producer
from dagster import AssetSelection, DagsterEventType, DagsterInstance, DagsterRunStatus, build_sensor_context
from deltalake import DeltaTable as RsDeltaTable

from medallion_assets.definitions import all_assets, defs
from medallion_assets.orchestration.jobs import downstream_job
from medallion_assets.orchestration.maintenance import maintenance_job
from medallion_assets.orchestration.partitions import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    range_tags,
)
from medallion_assets.orchestration.sensors.raw_to_gold import raw_to_gold_sensor
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runs import materialize_days
from medallion_assets.tables import BRONZE, FACT_STREAM, RAW
from medallion_assets.topics import TOPICS, create_topics
from medallion_assets_tests.events import event

REPO = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).with_name("dg")
SKIP_LIVE = os.environ.get("MEDALLION_SKIP_LIVE_TESTS") == "1"
LATE_DAY = date(2018, 10, 5)

D1, D2, D4 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 4)
LATE = date(2018, 10, 5)  # an old day inside the partitions
BEFORE = date(2017, 6, 1)  # before the first partition


def produce(bootstrap: str, topic: str, values: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value=json.dumps(value).encode())
    assert producer.flush(30) == 0


def tick(instance: DagsterInstance, cursor: str | None = None):
    context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return raw_to_gold_sensor.evaluate_tick(context)


def ranges_of(tagged) -> list[tuple[date, date]]:
    """(first, last) day of each run or run request, from its range tags."""
    start, end = ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG
    return [(date.fromisoformat(r.tags[start]), date.fromisoformat(r.tags[end])) for r in tagged]


def ranges(data) -> list[tuple[date, date]]:
    """(first, last) day of each run a sensor tick requested."""
    return ranges_of(data.run_requests)


def ingest(instance: DagsterInstance, day: date) -> None:
    """Ingest what Kafka holds as materialize_days does it (demo, bench): a medallion_job run of raw."""
    result = materialize_days(day, day, AssetSelection.groups("raw"), instance=instance)
    assert result.success
    assert instance.get_run_by_id(result.run_id).job_name == "medallion_job"


@dataclass(frozen=True)
class Live:
    """Topics under a fresh prefix, a warehouse and a Dagster home, all set through the environment."""

    prefix: str
    root: Path
    instance: DagsterInstance


@pytest.fixture
def live(kafka_bootstrap, spark, tmp_path, monkeypatch) -> Iterator[Live]:
    prefix = f"o{uuid.uuid4().hex[:10]}-"
    create_topics(kafka_bootstrap, [prefix + t for t in TOPICS], partitions=2)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDALLION_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("MEDALLION_TOPIC_PREFIX", prefix)
    with DagsterInstance.get() as instance:
        yield Live(prefix, tmp_path / "warehouse", instance)


def test_ingestion_requests_runs_for_exactly_the_days_that_received_records(live, kafka_bootstrap, spark, spark_remote):
    prefix, root, instance = live.prefix, live.root, live.instance
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
    ingest(instance, D1)

    first = tick(instance)
    assert ranges(first) == [(D1, D2), (D4, D4)]
    keys = [r.run_key for r in first.run_requests]
    assert len(set(keys)) == 2
    assert [r.run_key for r in tick(instance).run_requests] == keys  # a replayed tick: same keys
    assert tick(instance, first.cursor).run_requests == []

    # The first range, launched with `dg launch` from the project (pyproject.toml names the code
    # location; configured by the environment set above, on the warm Spark Connect server `make dev`
    # uses): one run, one Spark application, exactly its days.
    runs_before = {r.run_id for r in instance.get_runs()}
    command = [str(DG), "launch", "--assets", "not group:raw", "--partition-range", f"{D1}...{D2}"]
    env = {**os.environ, "SPARK_REMOTE": spark_remote}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    new_runs = [r for r in instance.get_runs() if r.run_id not in runs_before]
    assert len(new_runs) == 1 and new_runs[0].status == DagsterRunStatus.SUCCESS
    assert new_runs[0].tags.items() >= range_tags(D1, D2).items()  # our tag names are the CLI's
    events = instance.get_records_for_run(new_runs[0].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    materialized = {e.event_log_entry.dagster_event.asset_key for e in events}
    assert materialized == set(downstream_job.selection.resolve(all_assets))
    app_ids = {e.asset_materialization.metadata["spark_app_id"].value for e in events}
    assert len(app_ids) == 1

    # Replayed from the start, the sensor sees that this ad-hoc run rebuilt D1 and D2 after raw.
    assert ranges(tick(instance)) == [(D4, D4)]
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
    ingest(instance, LATE)
    late = tick(instance, first.cursor)
    assert ranges(late) == [(LATE, LATE)]
    assert late.run_requests[0].run_key not in keys
    raw_days = RsDeltaTable(str(root / RAW["listen_events"].path)).to_pyarrow_dataset().to_table()["event_date"]
    assert {LATE, BEFORE} <= set(raw_days.to_pylist())


# The small-files table of the maintenance test: APPENDS appends of ROWS_PER_APPEND ids spread over
# DAYS event_date partitions, each append written by WRITERS tasks.
APPENDS, ROWS_PER_APPEND, DAYS, WRITERS = 3, 20, 2, 3


def test_maintenance_compacts_small_files_and_records_what_it_did(spark, tmp_path):
    root = tmp_path / "warehouse"
    table = RAW["auth_events"]
    uri = str(root / table.path)
    for i in range(APPENDS):
        day = f"date_add(date'2024-03-01', cast(id % {DAYS} as int)) AS event_date"
        rows = spark.range(i * ROWS_PER_APPEND, (i + 1) * ROWS_PER_APPEND).selectExpr("id", day)
        rows.repartition(WRITERS).write.format("delta").mode("append").partitionBy("event_date").save(uri)
    files_before = len(RsDeltaTable(uri).file_uris())
    parquet_before = len(list(Path(uri).rglob("*.parquet")))
    assert files_before >= APPENDS * DAYS  # every append writes at least one file per day

    config = {"ops": {"optimize_and_vacuum": {"config": {"retention_hours": 0, "allow_short_retention": True}}}}
    result = maintenance_job.execute_in_process(
        run_config=config, resources={"spark": SparkResource(), "warehouse": WarehouseResource(root=str(root))}
    )
    assert result.success
    after = RsDeltaTable(uri)
    assert len(after.file_uris()) < files_before
    assert len(after.file_uris()) == DAYS  # compacted to one file per event_date partition
    assert len(list(Path(uri).rglob("*.parquet"))) < parquet_before  # vacuumed from storage too
    data = after.to_pyarrow_dataset().to_table()
    assert sorted(data["id"].to_pylist()) == list(range(APPENDS * ROWS_PER_APPEND))
    observations = result.get_asset_observation_events()
    assert [o.asset_key for o in observations] == [table.asset_key]  # the other tables do not exist yet
    metadata = {k: v.value for k, v in observations[0].event_specific_data.asset_observation.metadata.items()}
    assert metadata["files_before"] == files_before
    assert metadata["files_compacted"] == files_before
    assert metadata["files_after"] == DAYS
    assert metadata["files_vacuumed"] == files_before
    assert metadata["retention_hours"] == 0
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", None) in (None, "true")


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
def test_the_daemon_ingests_and_propagates_to_gold(kafka_bootstrap, spark_remote, tmp_path):
    prefix = f"l{uuid.uuid4().hex[:10]}-"
    create_topics(kafka_bootstrap, [prefix + t for t in TOPICS], partitions=2)
    # three listens of a new day and one of an old day inside the partitions (late data), in one batch
    batch = [event(f"{D1}T0{h}:00:00", user=str(h)) for h in range(1, 4)] + [event(f"{LATE_DAY}T12:00:00", user="9")]
    produce(kafka_bootstrap, prefix + "listen_events", batch)
    home, root = tmp_path / "home", tmp_path / "warehouse"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MEDALLION_WAREHOUSE": str(root),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEDALLION_TOPIC_PREFIX": prefix,
        "SPARK_REMOTE": spark_remote,  # as `make dev` runs it: every run a client of one warm Spark
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
        late = first + wait_for(lambda: fact_rows_of(fact, LATE_DAY) == 1, dev, log, f"the late fact row for {LATE_DAY}")
        print(f"produce -> gold: {first:.0f} s for new events, {late:.0f} s for the late event of the same batch")
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
    assert len(ingest) == 1 and ingest[0].tags["medallion/lag.listen_events"] == "4"
    # the new day and the late day are not adjacent: one downstream run each
    downstream = [r for r in runs if r.job_name == downstream_job.name]
    assert sorted(ranges_of(downstream)) == [(LATE_DAY, LATE_DAY), (D1, D1)]

