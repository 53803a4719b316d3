"""Incremental equals full refresh: the same events processed day by day in shuffled order (then the
days the late day made stale re-run, as the sensor asks), and in one run over every day, give
identical tables; the SCD2 history of a user who changes level twice comes out right either way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from dagster import AssetSelection, ExecuteInProcessResult, build_sensor_context
from pyspark.sql import functions as F

from medallion_assets.definitions import defs
from medallion_assets.generator import Event
from medallion_assets.orchestration.partitions import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from medallion_assets.orchestration.sensors.raw_to_gold import raw_to_gold_sensor
from medallion_assets.tables import (
    ALL_TABLES,
    ARTIST_POPULARITY,
    BRONZE,
    DIM_ARTISTS,
    DIM_DATETIME,
    DIM_LOCATION,
    DIM_SONGS,
    DIM_USERS,
    FACT_STREAM,
    Table,
)
from medallion_assets_tests.events import encode, event
from medallion_assets_tests.pipeline import NOT_RAW, LivePipeline

D1, D2, D3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
BY_DAY_ORDER = (D2, D3, D1)  # shuffled; the sensor then re-runs D2 and D3
BELOW_RAW = [t for t in ALL_TABLES if t.layer != "raw"]
# Rebuilt whole from songs.csv, state codes and the calendar, whatever the days: built once, by the first run.
DAY_FREE = AssetSelection.assets(*(t.asset_key for t in (DIM_SONGS, DIM_ARTISTS, DIM_DATETIME)))


def user_history() -> list[Event]:
    """User 7 is free on D1, upgrades on D2, downgrades on D3; user 8 stays free."""
    listens = [
        event("2024-05-01T10:00:00", level="free", item=1),
        event("2024-05-02T09:00:00", level="free", item=2),
        event("2024-05-02T18:00:00", level="paid", item=4, artist="Other Artist"),
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


def travels() -> list[Event]:
    """User 9 in Tampa every day with moving coordinates (the smallest win), a zip-less town on D2, a new city on D3."""
    values = [
        event("2024-05-01T10:00:00", user="9", city="Tampa", state="FL", zip="33601", lat=27.95, lon=-82.45),
        event("2024-05-02T10:00:00", user="9", city="Tampa", state="FL", zip="33601", lat=27.90, lon=-82.40, item=2),
        event("2024-05-03T10:00:00", user="9", city="Tampa", state="FL", zip="33601", lat=27.99, lon=-82.50, item=3),
        event("2024-05-02T11:00:00", user="9", city="Nowhere", state="ZZ", zip=None, lat=1.0, lon=2.0, item=4),
        event("2024-05-03T12:00:00", user="9", city="Austin", state="TX", zip="73301", lat=30.27, lon=-97.74, item=5),
        event("2024-05-03T13:00:00", user="9", city=None, state="TX", zip="73301", lat=30.0, lon=-97.0, item=6),  # no city
    ]
    return [Event("listen_events", b"9", encode(v)) for v in values]


@dataclass(frozen=True)
class Both:
    """The same events in two warehouses: maintained day by day, and built in one run."""

    by_day: LivePipeline
    full: LivePipeline
    runs: list[ExecuteInProcessResult]
    requested: list[tuple[date, date]]  # the day ranges raw_to_gold_sensor asked for after the by-day runs

    def materialization(self, run: ExecuteInProcessResult, table: Table):
        """The materialization of an unpartitioned table in one of the by-day runs."""
        return next(e.materialization for e in run.get_asset_materialization_events() if e.asset_key == table.asset_key)


@pytest.fixture(scope="module")
def both(kafka_bootstrap, spark, tmp_path_factory) -> Both:
    by_day = LivePipeline.create(kafka_bootstrap, tmp_path_factory.mktemp("by_day"))
    by_day.produce(user_history() + travels())
    by_day.ingest()
    full = by_day.copy_of_raw(tmp_path_factory.mktemp("full"))
    first, *later = BY_DAY_ORDER
    runs = [by_day.run_days(first, first)] + [by_day.run_days(day, day, selection=NOT_RAW - DAY_FREE) for day in later]
    assert all(r.success for r in runs)
    # D1 arrived last: the first versions of users 7 and 9 now start on D1, so their listens of D2
    # (user 7) and of D2 and D3 (user 9, free throughout) carry replaced keys. dim_users reports
    # those days, and the sensor asks to run them again (no later run rebuilt them).
    tick = raw_to_gold_sensor.evaluate_tick(build_sensor_context(instance=by_day.instance, definitions=defs))
    start, end = ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG
    requested = [(date.fromisoformat(r.tags[start]), date.fromisoformat(r.tags[end])) for r in tick.run_requests]
    for first_day, last_day in requested:
        assert by_day.run_days(first_day, last_day, selection=NOT_RAW - DAY_FREE).success
    assert full.run_days(D1, D3).success
    return Both(by_day, full, runs, requested)


@pytest.mark.parametrize("table", BELOW_RAW, ids=lambda t: t.path)
def test_every_table_maintained_day_by_day_equals_a_full_refresh(both, spark, table):
    a = spark.read.format("delta").load(both.by_day.uri(table))
    b = spark.read.format("delta").load(both.full.uri(table))
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0, table.path


def test_late_data_that_moves_a_version_gets_the_days_keyed_to_it_rebuilt(both):
    d1 = both.materialization(both.runs[2], DIM_USERS)
    assert d1.metadata["stale_fact_days"].value == [D2.isoformat(), D3.isoformat()]
    assert both.requested == [(D2, D3)]


def test_three_versions_without_gap_or_overlap(both, spark):
    rows = spark.read.format("delta").load(both.by_day.uri(DIM_USERS)).where("userId = '7'").orderBy("row_activation_ts").collect()
    assert [(r["level"], str(r["row_activation_ts"]), str(r["row_expiration_ts"]), r["current_row"]) for r in rows] == [
        ("free", "2024-05-01 10:00:00", "2024-05-02 17:00:00", False),
        ("paid", "2024-05-02 17:00:00", "2024-05-03 07:00:00", False),
        ("free", "2024-05-03 07:00:00", "9999-12-31 00:00:00", True),
    ]
    assert [str(r["row_activation_date"]) for r in rows] == ["2024-05-01", "2024-05-02", "2024-05-03"]


def test_each_listen_points_at_the_version_valid_then(both, spark):
    fact = spark.read.format("delta").load(both.by_day.uri(FACT_STREAM))
    listens = spark.read.format("delta").load(both.by_day.uri(BRONZE["listen_events"]))
    users = spark.read.format("delta").load(both.by_day.uri(DIM_USERS))
    joined = (
        fact.join(users, "userKey")
        .join(listens, ["kafka_partition", "kafka_offset"])
        .select(users.level.alias("version_level"), listens.level.alias("listen_level"))
    )
    rows = joined.collect()
    assert len(rows) == listens.count() == 11  # 5 listens of users 7 and 8, 6 of user 9
    assert all(r["version_level"] == r["listen_level"] for r in rows)
    assert fact.where(F.col("userKey").isNull()).count() == 0


def test_locations_keep_the_smallest_coordinates_seen(both, spark):
    rows = {(r["city"], r["zip"]): (r["latitude"], r["longitude"]) for r in spark.read.format("delta").load(both.by_day.uri(DIM_LOCATION)).collect()}
    # Tampa, Nowhere, Austin and the unknown member; the city-less listen's location was dropped
    assert rows == {
        ("Tampa", "33601"): (27.90, -82.40),
        ("Nowhere", None): (1.0, 2.0),
        ("Austin", "73301"): (30.27, -97.74),
        ("Unknown", "Unknown"): (None, None),
    }


@pytest.mark.parametrize("table", [DIM_LOCATION, DIM_USERS, ARTIST_POPULARITY], ids=lambda t: t.path)
def test_a_day_run_merges_only_what_its_days_touch(both, table):
    first, *later = [both.materialization(run, table) for run in both.runs]
    assert first.metadata["refresh"].value == "full"  # the table did not exist yet
    for m in later:
        assert m.metadata["refresh"].value == "days" and m.metadata["delta_operation"].value in ("MERGE", "none")


def test_a_day_run_counts_only_its_days_input(both):
    d3 = both.materialization(both.runs[1], DIM_LOCATION)
    # D3 holds Tampa, Austin and the city-less listen: three location rows in, one dropped
    assert d3.metadata["input_rows"].value == 3
    assert d3.metadata["dropped_by_expectation"].value == {"valid_city": 1}
    users = both.materialization(both.runs[1], DIM_USERS)
    assert users.metadata["input_rows"].value == 4  # the versions of the users seen on D3: 7 (three) and 9 (one)
