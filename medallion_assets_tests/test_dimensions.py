"""Dimension builders: SCD2 users, hours, songs and artists."""

import random
from bisect import bisect_right
from datetime import date, datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F

from medallion_assets.bronze.transform import classify, to_bronze
from medallion_assets.keys import UNKNOWN
from medallion_assets.silver.dim_datetime import build_dim_datetime
from medallion_assets.silver.dim_users import (
    build_dim_users,
    days_in_spans,
    first_seen,
    moved_spans,
    replayed,
    user_observations,
    versions_of,
)
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


DAYS = [date(2024, 5, 1) + timedelta(days=i) for i in range(5)]
BRONZE_USER_COLUMNS = (
    "userId string, level string, firstName string, lastName string, gender string, registration_time timestamp, "
    "event_timestamp timestamp, kafka_topic string, kafka_partition int, kafka_offset long, event_date date"
)


def random_events(rng: random.Random) -> list[tuple]:
    """Bronze-shaped events of five users over five days: levels and names that change and change back,
    instants that collide (the status change wins them), registration times that differ."""
    events, offset = [], 0
    for user in map(str, range(1, 6)):
        level, name = "free", "Ada"
        for day in DAYS:
            for _ in range(rng.randrange(4)):
                level = rng.choice([level, level, "free", "paid"])
                name = rng.choice([name] * 5 + ["Bea"])
                at = datetime.combine(day, datetime.min.time()) + timedelta(hours=rng.choice([3, 9, 9, 15, 21]))
                topic = rng.choice(["listen_events", "listen_events", "status_change_events"])
                registered = datetime(2024, 1, 1) - timedelta(days=rng.randrange(3))
                offset += 1
                events.append((user, level, name, "Lovelace", "F", registered, at, topic, 0, offset, day))
    return events


def version_at(versions: list, user: str, at: datetime) -> str | None:
    """The userKey of the user's version valid at an instant."""
    mine = sorted((r["row_activation_ts"], r["row_expiration_ts"], r["userKey"]) for r in versions if r["userId"] == user)
    i = bisect_right([start for start, _, _ in mine], at) - 1
    return mine[i][2] if i >= 0 and at < mine[i][1] else None


def replay(spark, events: list[tuple], new: list[tuple], run_days: list[date]) -> None:
    """Check a batch replayed from the versions without `new` against the versions of every event: the
    same versions for the users seen on the run's days, the others' untouched, and exactly the days
    whose listens change version reported."""
    old = [e for e in events if e not in new]
    frame = lambda rows: spark.createDataFrame(rows, BRONZE_USER_COLUMNS)  # noqa: E731
    before = versions_of(user_observations([frame(old)])).cache()
    full = versions_of(user_observations([frame(events)])).collect()

    recent = frame(events).where(F.col("event_date") >= run_days[0])  # what the run reads: every day from its first on
    since = first_seen([recent.where(F.col("event_date").isin(run_days))])
    seen = {r["userId"] for r in since.collect()}
    touched = before.join(since, "userId", "left_semi")
    after = versions_of(replayed(touched, since, user_observations([recent])))
    assert sorted(after.collect()) == sorted(r for r in full if r["userId"] in seen)
    assert sorted(before.where(~F.col("userId").isin(list(seen))).collect()) == sorted(r for r in full if r["userId"] not in seen)

    old_versions = before.collect()
    moved = {e[-1] for e in events if e[-1] not in run_days and version_at(old_versions, e[0], e[6]) != version_at(full, e[0], e[6])}
    assert set(days_in_spans(recent, moved_spans(touched, after))) - set(run_days) == moved
    before.unpersist()


@pytest.mark.parametrize("seed", range(4))
def test_replaying_a_batch_from_the_versions_equals_rebuilding_from_every_event(spark, seed):
    rng = random.Random(seed)
    events = random_events(rng)
    run_days = sorted(rng.sample(DAYS, rng.randrange(1, 3)))  # a batch's days: new events there, late or not
    replay(spark, events, [e for e in events if e[-1] in run_days and rng.random() < 0.7], run_days)


def test_a_late_level_change_inside_a_version_moves_the_later_days_listens(spark):
    def at(day: date, level: str, topic: str = "listen_events", offset: int = 0) -> tuple:
        nine = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
        return ("1", level, "Ada", "Lovelace", "F", datetime(2024, 1, 1), nine, topic, 0, offset, day)

    d1, d2, d3 = DAYS[:3]
    upgrade = at(d2, "paid", "status_change_events", 2)  # arrives after d1 and d3 were built: free then, free since d1
    # free [d1, d2) paid [d2, d3) free [d3, ...): d3's listen moves from the first version to the third, whose key is new
    replay(spark, [at(d1, "free", offset=1), upgrade, at(d3, "free", offset=3)], [upgrade], [d2])


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
