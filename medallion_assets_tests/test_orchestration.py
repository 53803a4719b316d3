"""Propagation after ingestion, single-run ranges from the CLI, Delta maintenance, the daemon and the UI (in a
real browser), on Spark and the broker; the daemon's instance is the project's, on PostgreSQL, and queues
runs that write below raw one after the other.

The same logic without a JVM is in test_orchestration_logic.py (the fast tier).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Producer
from dagster import AssetSelection, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter, build_sensor_context
from dagster_graphql import DagsterGraphQLClient
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from deltalake import DeltaTable as RsDeltaTable
from playwright.sync_api import expect

from medallion_assets.definitions import all_assets, defs
from medallion_assets.dev.dagster_home import write as write_instance
from medallion_assets.dev.postgres import Server as PostgresServer
from medallion_assets.orchestration.jobs import NOT_FINISHED_STATUSES, downstream_job, ingest_job, medallion_job
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
from medallion_assets.tables import (
    ALL_TABLES,
    BRONZE,
    DAILY_USER_SUMMARY,
    DIM_ARTISTS,
    DIM_DATETIME,
    DIM_SONGS,
    DIM_USERS,
    FACT_STREAM,
    RAW,
    Table,
)
from medallion_assets.topics import TOPICS, create_topics
from medallion_assets_tests.browser import browser_page, lineage_graph_nodes
from medallion_assets_tests.events import event

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
DG = Path(sys.executable).with_name("dg")
SKIP_LIVE = os.environ.get("MEDALLION_SKIP_LIVE_TESTS") == "1"
RUN_TIMEOUT_MS = 300_000  # a run launched from the UI, start to end

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
    command = [str(DG), "launch", "--assets", "not group:raw and not group:ops", "--partition-range", f"{D1}...{D2}"]
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


def rows_of_day(root: Path, table: Table, day: date) -> list[dict]:
    """The rows of one day of a daily table (delta-rs), ordered by the table's key."""
    dataset = RsDeltaTable(str(root / table.path)).to_pyarrow_dataset()
    rows = dataset.to_table(filter=pc.field(table.partition_column) == pa.scalar(day, pa.date32()))
    return rows.sort_by([(column, "ascending") for column in table.key]).to_pylist()


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


def graphql(url: str, query: str) -> dict:
    """The data of a query to the webserver's GraphQL API (what the UI reads)."""
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


def table_rows(root: Path, table: Table) -> list[str]:
    """Every row of a table (delta-rs), each as its repr, sorted; none while the table does not exist."""
    if not any((root / table.path / "_delta_log").glob("*.json")):
        return []
    return sorted(map(repr, RsDeltaTable(str(root / table.path)).to_pyarrow_dataset().to_table().to_pylist()))


@dataclass(frozen=True)
class DagsterDev:
    """A running `dagster dev` (webserver and daemon) with its own topics, warehouse and Dagster home, the
    home's instance the project's own, its storage a database of the test PostgreSQL server."""

    url: str
    home: Path
    root: Path
    process: subprocess.Popen
    log: Path
    postgres: PostgresServer
    database: str
    bootstrap: str
    prefix: str

    def wait_for(self, condition, what: str, timeout_s: float = 600) -> float:
        """Seconds until condition() holds while `dagster dev` lives."""
        return wait_for(condition, self.process, self.log, what, timeout_s)

    @contextmanager
    def instance(self) -> Iterator[DagsterInstance]:
        """The instance of `dagster dev`, loaded as its processes load it (the storage's variables set meanwhile)."""
        with pytest.MonkeyPatch.context() as patch:
            for key, value in self.postgres.variables(self.database).items():
                patch.setenv(key, value)
            instance = DagsterInstance.from_config(str(self.home))
        with instance:
            yield instance

    def query(self, sql: str, *args) -> list[tuple]:
        """Rows of a query on the instance's database, read without Dagster."""
        with closing(self.postgres.connect(self.database)) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchall()

    def runs(self, job_name: str | None = None) -> list:
        """The instance's runs (of one job), newest first."""
        with self.instance() as instance:
            return list(instance.get_runs(RunsFilter(job_name=job_name) if job_name else None))

    def idle(self) -> bool:
        """Whether no run is queued, starting or running."""
        with self.instance() as instance:
            return not instance.get_runs(RunsFilter(statuses=list(NOT_FINISHED_STATUSES)))

    def succeeded_ranges(self, job_name: str) -> list[tuple[date, date]]:
        """(first, last) day of each successful run of one job."""
        return ranges_of([r for r in self.runs(job_name) if r.status == DagsterRunStatus.SUCCESS])

    def check_evaluations(self, run_id: str) -> list:
        """The asset check evaluations one run recorded."""
        with self.instance() as instance:
            records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        return [r.event_log_entry.dagster_event.event_specific_data for r in records]


@pytest.fixture(scope="module")
def dagster_dev(kafka_bootstrap, spark_remote, postgres, tmp_path_factory) -> Iterator[DagsterDev]:
    """`dagster dev` on 127.0.0.1 as `make dev` runs it with MEDALLION_DAGSTER_STORAGE=postgres: the project's
    instance configuration, its storage a fresh database of the test PostgreSQL server, its runs clients of
    the warm Spark Connect server. Started once for the live tests of this module; its topics hold one batch
    when it starts: three listens of D1 (late data is test_ingestion_requests'). Stopped by its process group
    afterwards, and its database dropped."""
    prefix = f"l{uuid.uuid4().hex[:10]}-"
    create_topics(kafka_bootstrap, [prefix + t for t in TOPICS], partitions=2)
    batch = [event(f"{D1}T0{h}:00:00", user=str(h)) for h in range(1, 4)]
    produce(kafka_bootstrap, prefix + "listen_events", batch)
    tmp = tmp_path_factory.mktemp("dagster-dev")
    home, root, log = tmp / "home", tmp / "warehouse", tmp / "dagster-dev.log"
    write_instance(home, "postgres")
    database = f"dagster_{uuid.uuid4().hex[:10]}"
    postgres.create_database(database)
    env = {
        **os.environ,
        **postgres.variables(database),
        "DAGSTER_HOME": str(home),
        "MEDALLION_WAREHOUSE": str(root),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEDALLION_TOPIC_PREFIX": prefix,
        "SPARK_REMOTE": spark_remote,  # as `make dev` runs it: every run a client of one warm Spark,
        "MEDALLION_RAW_ENGINE": "arrow",  # local on this machine, so raw ingests in the run's process
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(DAGSTER), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")]
    with open(log, "w") as out:
        dev = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: webserver_answers(port), dev, log, "the webserver", timeout_s=180)
        yield DagsterDev(f"http://127.0.0.1:{port}", home, root, dev, log, postgres, database, kafka_bootstrap, prefix)
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            dev.wait(30)
        with suppress(ProcessLookupError):  # what outlived the grace: dagster dev, or a code server stuck in its shutdown
            os.killpg(dev.pid, signal.SIGKILL)
        dev.wait(10)
        postgres.drop_database(database)


@pytest.mark.live
@pytest.mark.skipif(SKIP_LIVE, reason="MEDALLION_SKIP_LIVE_TESTS=1")
@pytest.mark.timeout(1200)
def test_the_daemon_ingests_and_propagates_to_gold(dagster_dev):
    fact = dagster_dev.root / FACT_STREAM.path
    first = dagster_dev.wait_for(lambda: fact_rows_of(fact, D1) == 3, f"3 fact rows for {D1}")
    print(f"produce -> gold: {first:.0f} s for new events")
    # One run ingested the batch and carried the day of its newest records to gold.
    ingest = dagster_dev.runs(medallion_job.name)
    assert len(ingest) == 1 and ingest[0].tags["medallion/lag.listen_events"] == "3"
    assert ranges_of(ingest) == [(D1, D1)]
    assert dagster_dev.runs(ingest_job.name) == [] and dagster_dev.runs(downstream_job.name) == []

    # Once the first batch is through, the latency of the next one, measured from the moment it is
    # produced: the sensor's wait and the run of the batch, on the warm server.
    dagster_dev.wait_for(dagster_dev.idle, "the runs of the first batch")
    produce(dagster_dev.bootstrap, dagster_dev.prefix + "listen_events", [event(f"{D2}T0{h}:00:00", user=str(h)) for h in (5, 6)])
    produced = time.time()
    latency = dagster_dev.wait_for(lambda: fact_rows_of(fact, D2) == 2, f"2 fact rows for {D2}")
    print(f"produce -> gold: {latency:.0f} s for a batch produced once the first was through")
    with dagster_dev.instance() as instance:
        for record in sorted(instance.get_run_records(limit=2), key=lambda r: r.create_timestamp):
            created = record.create_timestamp.timestamp()
            print(f"  {record.dagster_run.job_name}: created at +{created - produced:.1f} s, started at +{record.start_time - produced:.1f} s")
            for step in instance.get_run_step_stats(record.dagster_run.run_id):
                print(f"    {step.step_key}: +{step.start_time - produced:.1f} .. +{(step.end_time or time.time()) - produced:.1f}")
    assert fact_rows_of(fact, D1) == 3
    batches = dagster_dev.runs(medallion_job.name)
    assert ranges_of(batches) == [(D2, D2), (D1, D1)] and dagster_dev.runs(downstream_job.name) == []
    # The dimensions of songs.csv and the calendar were built by the first run today: not rebuilt.
    reference = {DIM_SONGS.asset_key, DIM_ARTISTS.asset_key, DIM_DATETIME.asset_key}
    assert set(batches[0].asset_selection) == medallion_job.selection.resolve(all_assets) - reference

    # All of it on PostgreSQL: the instance's stores are Postgres ones, and its runs, their events and
    # the sensors' ticks are rows of the database.
    with dagster_dev.instance() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        run_ids = {r.run_id for r in instance.get_runs()}
    assert {ingest[0].run_id} < run_ids <= {run_id for (run_id,) in dagster_dev.query("SELECT run_id FROM runs")}
    assert dagster_dev.query("SELECT count(*) FROM event_logs WHERE run_id = %s", ingest[0].run_id)[0][0] > 0
    assert dagster_dev.query("SELECT count(*) FROM job_ticks")[0][0] > 0
    # Its password is in none of the logs, events and views of the instance, the UI's included.
    password = dagster_dev.postgres.password()
    ui = graphql(dagster_dev.url, "{ instance { info poolConfig { poolGranularity defaultPoolLimit } } }")["instance"]
    assert "PostgresRunStorage" in ui["info"] and password not in ui["info"]
    assert ui["poolConfig"] == {"poolGranularity": "run", "defaultPoolLimit": 1}
    assert dagster_dev.query("SELECT count(*) FROM event_logs WHERE event LIKE %s", f"%{password}%") == [(0,)]
    assert not [f for f in [dagster_dev.log, *dagster_dev.home.rglob("*")] if f.is_file() and password.encode() in f.read_bytes()]


@pytest.mark.live
@pytest.mark.skipif(SKIP_LIVE, reason="MEDALLION_SKIP_LIVE_TESTS=1")
@pytest.mark.timeout(900)
def test_the_ui_shows_every_asset_and_reruns_a_gold_day_with_its_checks(dagster_dev, tmp_path):
    summary, root = DAILY_USER_SUMMARY, dagster_dev.root
    specs = defs.resolve_all_asset_specs()
    checks = {(k.asset_key, k.name) for k in defs.resolve_assets_def(summary.asset_key).check_keys}

    with browser_page(dagster_dev.url, tmp_path / "failure.png") as page:
        # The lineage graph draws every asset of the definitions, each in its group.
        started = time.monotonic()
        page.goto("/asset-groups")
        page.get_by_role("button", name="settings", exact=True).click()  # the graph's settings
        page.get_by_role("menuitem", name="Expand all groups").click()
        expect(page.locator("svg foreignObject:not(.group) [data-tooltip]")).to_have_count(len(specs))
        assert lineage_graph_nodes(page) == sorted((s.group_name, s.key.path[-1]) for s in specs)
        lineage_s = time.monotonic() - started

        # From the asset page, one run of D1 again, once the daemon's run of that day is done.
        dagster_dev.wait_for(lambda: (D1, D1) in dagster_dev.succeeded_ranges(medallion_job.name), f"the run of {D1}")
        rows_before, version_before = rows_of_day(root, summary, D1), RsDeltaTable(str(root / summary.path)).version()
        started = time.monotonic()
        page.goto(f"/assets/{summary.path}")
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Show all partitions").click()  # it offers the last 90 days first
        dialog.get_by_role("textbox").fill(D1.isoformat())
        dialog.get_by_role("textbox").press("Enter")
        expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
        dialog.get_by_role("button", name="Launch 1 run").click()
        page.get_by_role("link", name="View", exact=True).click()  # on the toast of the launched run
        page.wait_for_url("**/runs/*")
        run_id = page.url.rsplit("/", 1)[-1]
        status = page.get_by_text(re.compile("^(Success|Failure|Canceled)$"))  # the run's status tag, once it ends
        expect(status).to_be_visible(timeout=RUN_TIMEOUT_MS)
        expect(status).to_have_text("Success")
        log_filter = page.get_by_placeholder("Filter…")
        log_filter.fill("type:ASSET_CHECK_EVALUATION")
        log_filter.press("Enter")
        for asset_key, check in checks:
            evaluation = f"Check {check} succeeded for materialization of {' / '.join(asset_key.path)}."
            expect(page.get_by_text(evaluation)).to_be_visible()
        print(f"UI: lineage in {lineage_s:.0f} s, a run of {D1} launched and seen to succeed in {time.monotonic() - started:.0f} s")

    (run,) = [r for r in dagster_dev.runs() if r.run_id == run_id]
    assert run.status == DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == D1.isoformat()
    evaluations = dagster_dev.check_evaluations(run_id)
    assert {(e.asset_key, e.check_name) for e in evaluations} == checks and all(e.passed for e in evaluations)
    # The re-run replaced the day with the same rows: a new Delta version, nothing gained or lost.
    assert RsDeltaTable(str(root / summary.path)).version() > version_before
    assert rows_of_day(root, summary, D1) == rows_before


@pytest.mark.live
@pytest.mark.skipif(SKIP_LIVE, reason="MEDALLION_SKIP_LIVE_TESTS=1")
@pytest.mark.timeout(900)
def test_overlapping_runs_of_the_same_day_queue_one_after_the_other_and_build_what_one_builds(dagster_dev):
    # The tables as the daemon's run of D1 left them.
    dagster_dev.wait_for(lambda: (D1, D1) in dagster_dev.succeeded_ranges(medallion_job.name) and dagster_dev.idle(), "the daemon's run")
    below_raw = [t for t in ALL_TABLES if t.layer != "raw"]
    before = {t.path: table_rows(dagster_dev.root, t) for t in below_raw}
    assert before[FACT_STREAM.path] and before[DAILY_USER_SUMMARY.path]

    # Two runs of downstream_job for D1 submitted at once to the queue, as the UI submits them, each of
    # dim_users, which every run of a day merges into: two such MERGEs at once are what conflicts (the
    # whole job takes a minute a run). The daemon launches them.
    selection = [DIM_USERS.asset_key]
    started = time.monotonic()
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(dagster_dev.url.rsplit(":", 1)[1]))
    run_ids = [
        client.submit_job_execution(downstream_job.name, tags=range_tags(D1, D1), asset_selection=selection) for _ in range(2)
    ]
    with dagster_dev.instance() as instance:
        dagster_dev.wait_for(lambda: all(instance.get_run_by_id(i).is_finished for i in run_ids), "the two runs")
        first, second = sorted(instance.get_run_records(RunsFilter(run_ids=run_ids)), key=lambda r: r.start_time)
        materialized = [
            {r.event_log_entry.dagster_event.asset_key for r in instance.get_records_for_run(i, of_type=DagsterEventType.ASSET_MATERIALIZATION).records}
            for i in run_ids
        ]
    print(f"two overlapping runs of {D1}: {time.monotonic() - started:.0f} s, the second waited {second.start_time - second.create_timestamp.timestamp():.0f} s")
    assert [first.dagster_run.status, second.dagster_run.status] == [DagsterRunStatus.SUCCESS] * 2
    assert second.create_timestamp.timestamp() < first.end_time <= second.start_time  # asked for together, ran one after the other
    assert materialized == [set(selection)] * 2
    assert {t.path: table_rows(dagster_dev.root, t) for t in below_raw} == before
