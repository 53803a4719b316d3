"""Integrity check functions: each fails on a crafted violation and passes on clean data."""

from datetime import datetime

from medallion_assets.integrity import (
    count_mismatch,
    current_rows,
    duplicate_keys,
    null_keys,
    orphan_keys,
    songs_accounting,
    version_breaks,
)

OPEN = datetime(9999, 12, 31)
USERS = "userId string, level string, row_activation_ts timestamp, row_expiration_ts timestamp, current_row boolean"


def test_duplicate_keys(spark):
    clean = spark.createDataFrame([("a",), ("b",)], "k string")
    dirty = spark.createDataFrame([("a",), ("a",), (None,)], "k string")
    assert duplicate_keys(clean, ["k"]).failed == 0
    assert duplicate_keys(dirty, ["k"]).failed == 3


def test_current_rows_and_version_breaks(spark):
    good = [
        ("1", "free", datetime(2024, 1, 1), datetime(2024, 1, 2), False),
        ("1", "paid", datetime(2024, 1, 2), OPEN, True),
    ]
    gap = [
        ("1", "free", datetime(2024, 1, 1), datetime(2024, 1, 2), False),
        ("1", "paid", datetime(2024, 1, 3), OPEN, True),
    ]
    two_current = [
        ("1", "free", datetime(2024, 1, 1), OPEN, True),
        ("1", "paid", datetime(2024, 1, 2), OPEN, True),
    ]
    as_df = lambda rows: spark.createDataFrame(rows, USERS)  # noqa: E731
    assert current_rows(as_df(good)).failed == 0 and version_breaks(as_df(good)).failed == 0
    assert version_breaks(as_df(gap)).failed == 1
    assert current_rows(as_df(two_current)).failed == 1
    assert version_breaks(as_df(two_current)).failed == 1


def test_null_and_orphan_keys(spark):
    fact = spark.createDataFrame([("u1", "s1"), ("u2", None)], "userKey string, songKey string")
    users = spark.createDataFrame([("u1",)], "userKey string")
    songs = spark.createDataFrame([("s1",)], "songKey string")
    assert null_keys(fact, ["userKey", "songKey"]).failed == 1
    assert orphan_keys(fact, {"userKey": users, "songKey": songs}).failed == 2
    assert orphan_keys(fact.where("userKey = 'u1'"), {"userKey": users, "songKey": songs}).failed == 0


def test_count_mismatch(spark):
    expected = spark.createDataFrame([("d1", 3), ("d2", 2)], "day string, count long")
    same = spark.createDataFrame([("d2", 2), ("d1", 3)], "day string, count long")
    short = spark.createDataFrame([("d1", 1)], "day string, count long")
    assert count_mismatch(expected, same, ["day"]).failed == 0
    assert count_mismatch(expected, short, ["day"]).failed == 4


def test_songs_accounting():
    assert songs_accounting(10, 1, 2, 1, 6).failed == 0
    assert songs_accounting(10, 1, 2, 1, 5).failed == 1
