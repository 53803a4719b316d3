"""Data quality end to end: injected defects are all accounted for; a failing `fail` rule blocks."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from datetime import date

import pytest
from dagster import AssetCheckSeverity, AssetSelection, ExecuteInProcessResult, materialize

from medallion_assets.definitions import all_assets, resources
from medallion_assets.generator import Event, GenerationReport, GeneratorConfig, generate
from medallion_assets.raw.days import outside_partitions
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.schemas import SONGS_CSV_COLUMNS, TOPICS
from medallion_assets.tables import BRONZE, FACT_STREAM, QUARANTINE, RAW
from medallion_assets_tests.pipeline import LivePipeline

DAY = date(2024, 7, 1)
UNDATED = ("invalid_json", "not_utf8", "wrong_type_ts", "missing_ts")


def has_user(value: bytes) -> bool:
    """Whether a (readable) message carries a non-empty userId."""
    user = json.loads(value).get("userId")
    return user is not None and str(user).strip() != ""


@dataclass(frozen=True)
class Defects:
    """A day of events with injected defects, ingested and taken through bronze."""

    pipeline: LivePipeline
    events: list[Event]
    report: GenerationReport
    ingestion: ExecuteInProcessResult
    result: ExecuteInProcessResult


@pytest.fixture(scope="module")
def defects(kafka_bootstrap, spark, tmp_path_factory):
    """A day of events with 5% defects of every kind, ingested and taken through bronze."""
    pipeline = LivePipeline.create(kafka_bootstrap, tmp_path_factory.mktemp("defects"))
    config = GeneratorConfig(users=25, days=1, start_date=DAY, seed=5, defect_rate=0.05)
    events = list(generate(config))
    report = GenerationReport.for_config(config)
    for event in events:
        report.add(event)
    pipeline.produce(events)
    ingestion = pipeline.ingest()
    result = pipeline.run_days(DAY, DAY, selection=AssetSelection.groups("bronze"))
    return Defects(pipeline, events, report, ingestion, result)


def test_every_kind_was_injected(defects):
    report = defects.report
    injected = report.to_dict()["defects_per_kind"]
    assert all(injected[kind] > 0 for kind in injected if kind != "huge_message"), injected
    assert injected["huge_message"] >= 1


def test_run_succeeds_and_reconciles(defects):
    result = defects.result
    assert result.success
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[("quarantine", "reconciliation")].passed
    assert checks[("quarantine", "reconciliation")].metadata["failed_rows"].value == 0


def test_a_drop_rule_above_its_tolerance_warns_naming_the_day(defects, spark):
    pipeline, result = defects.pipeline, defects.result
    quarantine = spark.read.format("delta").load(pipeline.uri(QUARANTINE))
    dropped = {r["topic"]: r["count"] for r in quarantine.where("reject_reason = 'valid_user_id'").groupBy("topic").count().collect()}
    listens = next(
        e for e in result.get_asset_check_evaluations()
        if e.asset_key == BRONZE["listen_events"].asset_key and e.check_name == "valid_user_id"
    )
    raw_rows = spark.read.format("delta").load(pipeline.uri(RAW["listen_events"])).where(f"event_date = '{DAY}'").count()
    # 5% defects, about a third of them without a user id: the fraction is above the 1% tolerated
    assert listens.metadata["failed_rows"].value == dropped["listen_events"] > 0
    assert listens.metadata["failed_fraction"].value == pytest.approx(dropped["listen_events"] / raw_rows)
    assert listens.metadata["failed_fraction"].value > 0.01
    assert not listens.passed and listens.severity == AssetCheckSeverity.WARN and listens.partition == DAY.isoformat()
    assert "valid_user_id" in listens.description and DAY.isoformat() in listens.description
    assert listens.metadata["sample"].value  # the rows it dropped, to look at


def test_raw_figures_from_commit_statistics_equal_counts_over_the_tables(defects, spark):
    # Each raw step reads its batch's figures from the files its commit added; count them in the tables instead.
    metadata = {e.asset_key: e.materialization.metadata for e in defects.ingestion.get_asset_materialization_events()}
    checks = {
        e.asset_key: e.metadata for e in defects.ingestion.get_asset_check_evaluations() if e.check_name == "records_outside_partitions"
    }
    for topic in TOPICS:
        raw = spark.read.format("delta").load(defects.pipeline.uri(RAW[topic]))
        figures = metadata[RAW[topic].asset_key]
        outside = {r["reason"]: r["count"] for r in outside_partitions(raw).groupBy("reason").count().collect()}
        days = sorted(str(r["event_date"]) for r in raw.where("event_date IS NOT NULL").select("event_date").distinct().collect())
        assert figures["malformed_records"].value == raw.where("parse_error IS NOT NULL").count(), topic
        assert figures["undated_records"].value == raw.where("event_date IS NULL").count(), topic
        assert figures["event_dates"].value == days, topic
        assert checks[RAW[topic].asset_key]["by_reason"].value == outside, topic
    assert sum(sum(m["by_reason"].value.values()) for m in checks.values()) > 0  # the defects put records outside


def test_counts_equal_what_was_injected(defects, spark):
    pipeline, events = defects.pipeline, defects.events
    kinds = Counter(e.defect for e in events if e.defect)
    guest = Counter(e.defect for e in events if e.defect and e.defect not in UNDATED and not has_user(e.value))
    natural_guests = sum(1 for e in events if e.defect is None and not has_user(e.value))
    raw = {t: spark.read.format("delta").load(pipeline.uri(RAW[t])) for t in TOPICS}
    undated = sum(df.where("event_date IS NULL").count() for df in raw.values())
    future = sum(df.where("event_date > '2099-12-31'").count() for df in raw.values())
    quarantine = spark.read.format("delta").load(pipeline.uri(QUARANTINE))
    reasons = Counter({r["reject_reason"]: r["count"] for r in quarantine.groupBy("reject_reason").count().collect()})

    assert sum(df.count() for df in raw.values()) == len(events)
    assert undated == sum(kinds[k] for k in UNDATED)
    assert future == kinds["future_ts"]
    assert reasons["malformed"] == kinds["wrong_type_user"]
    assert reasons["valid_user_id"] == (
        kinds["missing_user"] + kinds["empty_user"] + natural_guests
        + guest["duplicate"] + guest["negative_duration"] + guest["extra_fields"] + guest["huge_message"]
    )
    assert reasons["duplicate"] == kinds["duplicate"] - guest["duplicate"]
    assert reasons["valid_duration"] == kinds["negative_duration"] - guest["negative_duration"] + kinds["absurd_duration"]
    assert reasons["malformed without a day"] + reasons["no readable ts"] == undated
    assert sum(n for reason, n in reasons.items() if reason.startswith("after ")) == future
    bronze = sum(spark.read.format("delta").load(pipeline.uri(BRONZE[t])).count() for t in TOPICS)
    assert bronze + sum(reasons.values()) == len(events)


def test_a_failing_fail_rule_blocks_downstream(spark, tmp_path):
    songs = tmp_path / "songs.csv"
    with songs.open("w", newline="") as f:
        writer = csv.DictWriter(f, SONGS_CSV_COLUMNS)
        writer.writeheader()
        for i, duration in enumerate(["200.5", "-3.0", "180"]):
            writer.writerow({"song_id": f"SO{i}", "title": f"T{i}", "artist_id": "AR1", "artist_name": "A", "duration": duration})
    result = materialize(
        all_assets,
        selection=AssetSelection.assets(["silver", "dim_songs"], FACT_STREAM.asset_key),
        resources={**resources, "warehouse": WarehouseResource(root=str(tmp_path / "wh"), songs_csv=str(songs))},
        raise_on_error=False,
    )
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "valid_duration")
    assert not check.passed and check.metadata["failed_rows"].value == 1
    assert check.description == "1 of 3 rows fail valid_duration"
    messages = "\n".join(str(e.message) for e in result.all_events)
    assert "valid_duration" in messages
    assert not any(e.step_key == "gold__fact_stream" for e in result.all_events if e.is_step_start)
    assert not (tmp_path / "wh" / FACT_STREAM.path).exists()
