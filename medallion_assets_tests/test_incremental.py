"""Dimensions maintained from the run's days equal a rebuild from every day: order and re-runs do not matter."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import AssetSelection

from medallion_assets.generator import Event
from medallion_assets.tables import BRONZE, DIM_LOCATION
from medallion_assets_tests.events import encode, event
from medallion_assets_tests.pipeline import LivePipeline

D1, D2, D3 = date(2024, 9, 1), date(2024, 9, 2), date(2024, 9, 3)
LOCATIONS = AssetSelection.assets(BRONZE["listen_events"].asset_key, DIM_LOCATION.asset_key)


def listens() -> list[Event]:
    """Tampa on every day with moving coordinates (the smallest wins), a new city on D3, a zip-less town on D2."""
    values = [
        event("2024-09-01T10:00:00", city="Tampa", state="FL", zip="33601", lat=27.95, lon=-82.45),
        event("2024-09-02T10:00:00", city="Tampa", state="FL", zip="33601", lat=27.90, lon=-82.40, item=2),
        event("2024-09-03T10:00:00", city="Tampa", state="FL", zip="33601", lat=27.99, lon=-82.50, item=3),
        event("2024-09-02T11:00:00", city="Nowhere", state="ZZ", zip=None, lat=1.0, lon=2.0, item=4),
        event("2024-09-03T12:00:00", city="Austin", state="TX", zip="73301", lat=30.27, lon=-97.74, item=5),
        event("2024-09-03T13:00:00", city=None, state="TX", zip="73301", lat=30.0, lon=-97.0, item=6),  # dropped: no city
    ]
    return [Event("listen_events", b"7", encode(v)) for v in values]


@pytest.fixture(scope="module")
def both(kafka_bootstrap, spark, tmp_path_factory):
    """The same listens: day by day in shuffled order with one day re-run, and as one full refresh."""
    by_day = LivePipeline.create(kafka_bootstrap, tmp_path_factory.mktemp("by_day"))
    by_day.produce(listens())
    full = by_day.sharing_topics(tmp_path_factory.mktemp("full"))
    by_day.ingest()
    full.ingest()
    runs = [by_day.run_days(day, day, selection=LOCATIONS) for day in (D2, D3, D1, D3)]
    full.run_days(D1, D3, selection=AssetSelection.assets(BRONZE["listen_events"].asset_key))
    full.run_days(D1, D3, selection=AssetSelection.assets(DIM_LOCATION.asset_key))
    return by_day, full, runs


def test_merged_days_equal_a_full_refresh(both, spark):
    by_day, full, _ = both
    a = spark.read.format("delta").load(by_day.uri(DIM_LOCATION))
    b = spark.read.format("delta").load(full.uri(DIM_LOCATION))
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0
    rows = {(r["city"], r["zip"]): (r["latitude"], r["longitude"]) for r in a.collect()}
    # Tampa, Nowhere, Austin and the unknown member; the city-less listen was dropped
    assert rows == {
        ("Tampa", "33601"): (27.90, -82.40),
        ("Nowhere", None): (1.0, 2.0),
        ("Austin", "73301"): (30.27, -97.74),
        ("Unknown", "Unknown"): (None, None),
    }


def test_a_day_run_reads_and_reports_only_its_days(both):
    _, _, runs = both
    first, *later = [
        next(m for m in (e.materialization for e in r.get_asset_materialization_events()) if m.asset_key == DIM_LOCATION.asset_key)
        for r in runs
    ]
    assert first.metadata["refresh"].value == "full"  # the table did not exist yet
    for m in later:
        assert m.metadata["refresh"].value == "days" and m.metadata["delta_operation"].value in ("MERGE", "none")
    # D3 holds Tampa, Austin and the city-less listen: three location rows in, one dropped
    assert later[0].metadata["input_rows"].value == 3
    assert later[0].metadata["dropped_by_expectation"].value == {"valid_city": 1}
