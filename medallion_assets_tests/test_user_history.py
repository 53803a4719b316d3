"""dim_users through the real pipeline: free -> paid -> free, days processed in any order."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import AssetSelection
from pyspark.sql import functions as F

from medallion_assets.generator import Event
from medallion_assets.tables import BRONZE, DIM_USERS, FACT_STREAM
from medallion_assets_tests.events import encode, event
from medallion_assets_tests.pipeline import LivePipeline

DAYS = [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
USER_HISTORY = AssetSelection.groups("bronze") | AssetSelection.assets(DIM_USERS.asset_key)


def history() -> list[Event]:
    """User 7 is free on day 1, upgrades on day 2, downgrades on day 3; user 8 stays free."""
    listens = [
        event("2024-05-01T10:00:00", level="free", item=1),
        event("2024-05-02T09:00:00", level="free", item=2),
        event("2024-05-02T18:00:00", level="paid", item=4),
        event("2024-05-03T12:00:00", level="free", item=6),
        event("2024-05-02T11:00:00", user="8", level="free", item=1),
    ]
    changes = [
        event("2024-05-02T17:00:00", level="paid", item=3, prevLevel="free", statusChangeType="upgrade"),
        event("2024-05-03T07:00:00", level="free", item=5, prevLevel="paid", statusChangeType="downgrade"),
    ]
    return [Event("listen_events", b"7", encode(e)) for e in listens] + [
        Event("status_change_events", b"7", encode(e)) for e in changes
    ]


@pytest.fixture(scope="module")
def pipelines(kafka_bootstrap, spark, tmp_path_factory):
    """The same events processed day by day in reverse order, and from scratch in one run."""
    reverse = LivePipeline.create(kafka_bootstrap, tmp_path_factory.mktemp("reverse"))
    reverse.produce(history())
    scratch = reverse.sharing_topics(tmp_path_factory.mktemp("scratch"))
    for pipeline in (reverse, scratch):
        pipeline.ingest()
    for day in reversed(DAYS):
        reverse.run_days(day, day, selection=USER_HISTORY)
    reverse.run_days(DAYS[0], DAYS[-1], selection=AssetSelection.assets(FACT_STREAM.asset_key) | AssetSelection.groups("silver") - AssetSelection.assets(DIM_USERS.asset_key))
    scratch.run_days(DAYS[0], DAYS[-1], selection=USER_HISTORY)
    return reverse, scratch


def test_three_versions_without_gap_or_overlap(pipelines, spark):
    reverse, _ = pipelines
    rows = spark.read.format("delta").load(reverse.uri(DIM_USERS)).where("userId = '7'").orderBy("row_activation_ts").collect()
    assert [(r["level"], str(r["row_activation_ts"]), str(r["row_expiration_ts"]), r["current_row"]) for r in rows] == [
        ("free", "2024-05-01 10:00:00", "2024-05-02 17:00:00", False),
        ("paid", "2024-05-02 17:00:00", "2024-05-03 07:00:00", False),
        ("free", "2024-05-03 07:00:00", "9999-12-31 00:00:00", True),
    ]
    assert [str(r["row_activation_date"]) for r in rows] == ["2024-05-01", "2024-05-02", "2024-05-03"]


def test_reverse_order_equals_a_rebuild_from_scratch(pipelines, spark):
    reverse, scratch = pipelines
    a = spark.read.format("delta").load(reverse.uri(DIM_USERS))
    b = spark.read.format("delta").load(scratch.uri(DIM_USERS))
    assert a.count() == 5 and a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0


def test_each_listen_points_at_the_version_valid_then(pipelines, spark):
    reverse, _ = pipelines
    fact = spark.read.format("delta").load(reverse.uri(FACT_STREAM))
    listens = spark.read.format("delta").load(reverse.uri(BRONZE["listen_events"]))
    users = spark.read.format("delta").load(reverse.uri(DIM_USERS))
    joined = (
        fact.join(users, "userKey")
        .join(listens, ["kafka_partition", "kafka_offset"])
        .select(users.level.alias("version_level"), listens.level.alias("listen_level"))
    )
    rows = joined.collect()
    assert len(rows) == 5
    assert all(r["version_level"] == r["listen_level"] for r in rows)
    assert fact.where(F.col("userKey").isNull()).count() == 0
