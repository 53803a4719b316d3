"""Integrity check functions: each fails on a crafted violation and passes on clean data."""

from datetime import date, datetime

from medallion_assets.quality.integrity import (
    current_rows,
    duplicate_keys,
    fact_key_outcomes,
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


def test_null_and_orphan_keys_per_day(spark):
    d1, d2 = date(2024, 1, 1), date(2024, 1, 2)
    fact = spark.createDataFrame(
        [("u1", "s1", d1), ("u2", None, d1), ("u1", "s1", d2)], "userKey string, songKey string, date_part date"
    )
    dims = {
        "userKey": spark.createDataFrame([("u1",)], "userKey string"),
        "songKey": spark.createDataFrame([("s1",)], "songKey string"),
    }
    nulls, orphans = fact_key_outcomes(fact, dims, [d1, d2])
    # d1: row 2 has a null songKey; its userKey u2 and songKey null are both missing from the dimensions
    assert (nulls[d1].failed, nulls[d1].total) == (1, 2) and nulls[d2].failed == 0
    assert (orphans[d1].failed, orphans[d1].total) == (2, 2) and orphans[d2].failed == 0
    assert orphans[d1].sample and {r["key"] for r in orphans[d1].sample} == {"userKey", "songKey"}
