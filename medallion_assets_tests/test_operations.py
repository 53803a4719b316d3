"""Operations on a real broker and real Delta tables: a bad load (a wrong songs.csv) rolled back leaves
every table as before it, refused while a later run changed its tables, then cascaded; the next
ingestion rebuilds what a warehouse that never saw the bad load holds. Along the way, the quality log
holds one row per check evaluation Dagster recorded, and a field outside the contract is named."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from dagster import DagsterEventType, ExecuteInProcessResult, materialize
from deltalake import DeltaTable as RsDeltaTable

from medallion_assets.generator import Event
from medallion_assets.ops.assets import quality_log
from medallion_assets.ops.rollback import Plan, plan, rollback_job
from medallion_assets.orchestration.jobs import PIPELINE
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runs import materialize_days
from medallion_assets.schemas import SONGS_CSV_COLUMNS
from medallion_assets.tables import ALL_TABLES, BRONZE, QUALITY_LOG, RAW
from medallion_assets.topics import client_settings
from medallion_assets_tests.events import encode, event
from medallion_assets_tests.pipeline import NOT_RAW, LivePipeline

DAY = date(2024, 6, 1)
ROOT = Path(__file__).resolve().parents[1]


def batch(first_item: int, extra: dict | None = None) -> list[Event]:
    """Listens of users 7 and 8 on DAY (one with `extra` fields), a page view, one listen without a user."""
    listens = [
        event("2024-06-01T10:00:00", user="7", item=first_item, artist="Casual", song="Eye Of The Storm", **(extra or {})),
        event("2024-06-01T11:00:00", user="8", item=first_item + 1),
        event("2024-06-01T12:00:00", user="", item=first_item + 2),  # dropped by valid_user_id
    ]
    return [Event("listen_events", b"7", encode(v)) for v in listens] + [
        Event("page_view_events", b"7", encode(event("2024-06-01T10:00:00", item=first_item, page="NextSong")))
    ]


def snapshot(root: Path) -> dict[str, list[str]]:
    """Every table's rows (as sorted JSON lines), read with delta-rs."""
    rows = {}
    for table in ALL_TABLES:
        data = RsDeltaTable(f"{root}/{table.path}").to_pyarrow_table().to_pylist()
        rows[table.path] = sorted(json.dumps(r, default=str, sort_keys=True) for r in data)
    return rows


def wrong_songs_csv(path: Path) -> Path:
    """A songs.csv holding one song of none of the listens: every listen's song and artist unknown."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, SONGS_CSV_COLUMNS)
        writer.writeheader()
        writer.writerow({**dict.fromkeys(SONGS_CSV_COLUMNS, "0"), "song_id": "S1", "title": "Nothing", "artist_id": "A1",
                         "artist_name": "Nobody", "artist_location": "Nowhere", "duration": "200.0", "release": "None", "track_id": "T1", "year": "2000"})
    return path


@dataclass
class Story:
    """One warehouse through a good load, a bad load, a later run, and the rollback."""

    pipe: LivePipeline
    good: ExecuteInProcessResult
    bad: ExecuteInProcessResult
    later: ExecuteInProcessResult
    before_bad: dict[str, list[str]]
    offsets_before_bad: dict[str, int | None]
    refused: subprocess.CompletedProcess
    dry_run: subprocess.CompletedProcess
    planned: Plan
    rollback: ExecuteInProcessResult
    after_rollback: dict[str, list[str]]
    offsets_after_rollback: dict[str, int | None]


def offsets(pipe: LivePipeline) -> dict[str, int | None]:
    """raw/listen_events' Delta transaction of each Kafka partition."""
    delta = RsDeltaTable(pipe.uri(RAW["listen_events"]))
    return {p: delta.transaction_version(f"raw/{pipe.prefix}listen_events/{p}") for p in range(3)}


def cli(pipe: LivePipeline, home: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m medallion_assets.ops` on the pipeline's warehouse and topics."""
    return subprocess.run(
        [sys.executable, "-m", "medallion_assets.ops", *args], env=pipe.cli_env(home), cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def story(kafka_bootstrap, spark, tmp_path_factory) -> Story:
    pipe = LivePipeline.create(kafka_bootstrap, tmp_path_factory.mktemp("ops"))
    pipe.produce(batch(1, extra={"bitrate": 320}))
    good = pipe.run_days(DAY, DAY, selection=PIPELINE)
    before_bad, offsets_before_bad = snapshot(pipe.root), offsets(pipe)
    pipe.produce(batch(10))
    songs = wrong_songs_csv(tmp_path_factory.mktemp("ref") / "songs.csv")
    bad_resources = {"warehouse": WarehouseResource(root=str(pipe.root), songs_csv=str(songs))}
    bad = materialize_days(DAY, DAY, selection=PIPELINE, resources={**pipe.resources, **bad_resources}, instance=pipe.instance)
    later = materialize_days(DAY, DAY, selection=NOT_RAW, resources={**pipe.resources, **bad_resources}, instance=pipe.instance)
    home = tmp_path_factory.mktemp("home")
    refused = cli(pipe, home, "rollback", bad.run_id)
    dry_run = cli(pipe, home, "rollback", bad.run_id, "--cascade", "--dry-run")
    planned = plan(WarehouseResource(root=str(pipe.root)), pipe.resources["kafka"], bad.run_id, cascade=True)
    rollback = rollback_job.execute_in_process(
        run_config={"ops": {"rollback_run": {"config": {"run_id": bad.run_id, "cascade": True}}}},
        resources={k: pipe.resources[k] for k in ("warehouse", "kafka")},
        instance=pipe.instance,
    )
    return Story(pipe, good, bad, later, before_bad, offsets_before_bad, refused, dry_run, planned, rollback, snapshot(pipe.root), offsets(pipe))


def test_the_runs_succeed(story):
    assert story.good.success and story.bad.success and story.later.success and story.rollback.success


def test_a_rollback_over_a_later_run_is_refused_naming_it(story):
    assert story.refused.returncode == 2, story.refused.stderr
    assert f"later runs {story.later.run_id}" in story.refused.stdout


def test_the_dry_run_lists_every_table_with_its_version_before(story):
    assert story.dry_run.returncode == 0, story.dry_run.stderr
    planned = story.planned
    assert planned.runs == [story.bad.run_id, story.later.run_id]
    for t in planned.tables:
        assert f"{t.table.path} " in story.dry_run.stdout and f"-> version {t.before}" in story.dry_run.stdout
    assert "Dry run: nothing changed." in story.dry_run.stdout
    # every table the bad load changed is in the plan (all but the calendar, which it rebuilt unchanged or not)
    assert {t.table.path for t in planned.tables} >= {RAW["listen_events"].path, BRONZE["listen_events"].path, "gold/fact_stream", "silver/dim_songs"}


def test_rollback_leaves_every_table_as_before_the_bad_load(story):
    assert story.after_rollback == story.before_bad


def test_rollback_takes_raw_offsets_back(story):
    assert {p: v or 0 for p, v in story.offsets_after_rollback.items()} == {p: v or 0 for p, v in story.offsets_before_bad.items()}
    assert sum(v or 0 for v in story.offsets_before_bad.values()) == 3  # the good load's three listens


def test_rollback_records_a_materialization_per_restored_table(story):
    events = story.rollback.get_asset_materialization_events()
    restored = {e.asset_key.to_user_string() for e in events}
    assert {"gold/fact_stream", "silver/dim_songs", RAW["listen_events"].path} <= restored
    for e in events:
        metadata = e.materialization.metadata
        assert metadata["rolled_back_run"].value == story.bad.run_id and "restored_to_version" in metadata
    fact = [e for e in events if e.asset_key.to_user_string() == "gold/fact_stream"]
    assert [e.partition for e in fact] == [DAY.isoformat()]
    assert fact[0].materialization.metadata["dagster/partition_row_count"].value == 2


@pytest.fixture(scope="module")
def again(story, tmp_path_factory) -> tuple[ExecuteInProcessResult, LivePipeline]:
    """Ingestion after the rollback (songs.csv right again), and a warehouse fed by the same topics from scratch."""
    rerun = story.pipe.run_days(DAY, DAY, selection=PIPELINE)
    fresh = story.pipe.sharing_topics(tmp_path_factory.mktemp("fresh"))
    assert rerun.success and fresh.run_days(DAY, DAY, selection=PIPELINE).success
    return rerun, fresh


def test_ingesting_again_equals_a_warehouse_that_never_saw_the_bad_load(story, again, spark):
    _, fresh = again
    assert story.pipe.rows(RAW["listen_events"]) == 6
    for table in ALL_TABLES:
        a = spark.read.format("delta").load(story.pipe.uri(table)).drop("ingestion_timestamp")
        b = spark.read.format("delta").load(fresh.uri(table)).drop("ingestion_timestamp")
        assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0, table.path


def test_the_quality_log_holds_one_row_per_check_evaluation(story, spark):
    log = RsDeltaTable(story.pipe.uri(QUALITY_LOG)).to_pyarrow_table().to_pylist()
    assert spark.read.format("delta").load(story.pipe.uri(QUALITY_LOG)).count() == len(log)  # Spark reads it too
    for run in (story.good, story.bad, story.later):
        recorded = story.pipe.instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        checks = [r for r in log if r["run_id"] == run.run_id and r["kind"] == "check"]
        assert len(checks) == len(recorded) > 0
    tallies = [r for r in log if r["run_id"] == story.good.run_id and r["kind"] == "quarantine"]
    assert [(r["asset"], r["partition_key"], r["name"], r["failed_rows"], r["total_rows"]) for r in tallies] == [
        ("bronze/listen_events", DAY.isoformat(), "valid_user_id", 1, 3)
    ]
    rows = {r["asset"]: r for r in log if r["run_id"] == story.good.run_id and r["kind"] == "rows"}
    assert rows["bronze/listen_events"]["total_rows"] == 2 and json.loads(rows["bronze/listen_events"]["metadata"])["rows_in"] == 3


def test_the_quality_log_audit_passes(story):
    result = materialize([quality_log], resources={"warehouse": story.pipe.resources["warehouse"]}, instance=story.pipe.instance)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["matches_event_log"].passed and checks["unique_entries"].passed
    assert checks["matches_event_log"].metadata["audited_runs"].value >= 4


def test_a_field_outside_the_contract_is_rescued_and_named(story):
    bronze = RsDeltaTable(story.pipe.uri(BRONZE["listen_events"])).to_pyarrow_table().to_pylist()
    assert sorted(r["rescued"] for r in bronze if r["rescued"]) == ['{"bitrate":320}']
    raw = RsDeltaTable(story.pipe.uri(RAW["listen_events"])).to_pyarrow_table().to_pylist()
    assert all(json.loads(r["value"]).get("bitrate") == 320 for r in raw if r["rescued"])
    drift = [e for e in story.good.get_asset_check_evaluations() if e.check_name == "unexpected_fields" and e.asset_key == BRONZE["listen_events"].asset_key]
    assert len(drift) == 1 and not drift[0].passed and drift[0].severity.value == "WARN"
    assert drift[0].metadata["unexpected_fields"].value == {"bitrate": 1}
    assert drift[0].metadata["failed_rows"].value == 1 and drift[0].metadata["total_rows"].value == 2
    others = [e for e in story.good.get_asset_check_evaluations() if e.check_name == "unexpected_fields" and e.asset_key != BRONZE["listen_events"].asset_key]
    assert others and all(e.passed for e in others)


def test_the_plan_counts_the_records_kafka_no_longer_holds(story, again, kafka_bootstrap):
    rerun, _ = again
    kafka = story.pipe.resources["kafka"]
    topic = kafka.topic("listen_events")
    marks = kafka.end_offsets("listen_events")
    admin = AdminClient(client_settings(kafka_bootstrap))
    for future in admin.delete_records([TopicPartition(topic, p, high) for p, (_, high) in marks.items() if high]).values():
        future.result(30)  # retention, as it would delete them: every listen record so far
    planned = plan(WarehouseResource(root=str(story.pipe.root)), kafka, rerun.run_id)
    lost = {o.partition: o.lost for o in planned.offsets if o.topic == topic}
    assert sum(lost.values()) == 3 and all(o.held - o.back_to == o.lost for o in planned.offsets if o.topic == topic)
    assert "Kafka no longer holds" in "\n".join(planned.lines())
    assert planned.refused and not plan(WarehouseResource(root=str(story.pipe.root)), kafka, rerun.run_id, accept_loss=True).refused
