"""Dimension builders: SCD2 users, hours, songs and artists."""

from datetime import datetime, timezone

from medallion_assets.bronze.transform import classify, to_bronze
from medallion_assets.keys import UNKNOWN
from medallion_assets.silver.dim_datetime import build_dim_datetime
from medallion_assets.silver.dim_users import build_dim_users
from medallion_assets.silver.songs import artist_rows, build_dim_artists
from medallion_assets_tests.events import event, raw_frame

FREE_PAID_FREE = [
    event("2018-10-01T09:00:00", level="free", item=1),
    event("2018-10-01T21:00:00", level="free", item=2),
    event("2018-10-02T12:00:00", level="paid", item=3),
    event("2018-10-03T08:30:00", level="free", item=4),
    event("2018-10-03T09:00:00", level="free", item=5),
]


def bronze(spark, values):
    raw = raw_frame(spark, "listen_events", values)
    return to_bronze(classify(raw, "listen_events"), "listen_events")


def versions(dim):
    return [
        (r["level"], str(r["row_activation_ts"]), str(r["row_expiration_ts"]), r["current_row"])
        for r in dim.where(f"userId <> '{UNKNOWN}'").orderBy("row_activation_ts").collect()
    ]


def test_free_paid_free_gives_three_contiguous_versions(spark):
    assert versions(build_dim_users([bronze(spark, FREE_PAID_FREE)])) == [
        ("free", "2018-10-01 09:00:00", "2018-10-02 12:00:00", False),
        ("paid", "2018-10-02 12:00:00", "2018-10-03 08:30:00", False),
        ("free", "2018-10-03 08:30:00", "9999-12-31 00:00:00", True),
    ]


def test_input_order_does_not_change_the_dimension(spark):
    forward = build_dim_users([bronze(spark, FREE_PAID_FREE)])
    backward = build_dim_users([bronze(spark, list(reversed(FREE_PAID_FREE)))])
    assert forward.exceptAll(backward).count() == 0 and backward.exceptAll(forward).count() == 0


def test_unknown_member_and_unique_keys(spark):
    dim = build_dim_users([bronze(spark, FREE_PAID_FREE)])
    assert dim.where(f"userId = '{UNKNOWN}'").count() == 1
    assert dim.select("userKey").distinct().count() == dim.count()


def test_weekend_is_saturday_and_sunday_only(spark):
    # 2018-10-01 is a Monday; one week of hours
    start = datetime(2018, 10, 1, tzinfo=timezone.utc)
    end = datetime(2018, 10, 8, tzinfo=timezone.utc)
    rows = build_dim_datetime(spark, start, end).collect()
    assert len(rows) == 7 * 24
    weekend_days = sorted({r["datetime"].strftime("%A") for r in rows if r["weekendFlag"]})
    assert weekend_days == ["Saturday", "Sunday"]
    assert {r["dateKey"] for r in rows if r["datetime"] == datetime(2018, 10, 6, 13)} == {1538830800}


def test_artist_names_are_cleaned_and_keys_unique(spark):
    songs = spark.createDataFrame(
        [("AR1", 'The "Band"', None, None, None), ("AR1", "The Band", None, None, None), ("AR1", "The Band feat. X", None, None, None), ("AR2", "Back\\slash", None, None, None)],
        "artistId string, artistName string, location string, latitude double, longitude double",
    )
    dim = build_dim_artists(artist_rows(songs))
    assert sorted(r["name"] for r in dim.collect()) == sorted(["The Band", "The Band feat. X", "Backslash", UNKNOWN])
    assert dim.select("artistKey").distinct().count() == dim.count()
