"""bronze classification: valid, dropped by expectation, duplicate or malformed, never lost."""

from collections import Counter

import pytest
from pyspark.sql import functions as F

from medallion_assets.bronze.transform import classify, to_bronze
from medallion_assets.raw.parse import parse_records
from medallion_assets.tables import RAW
from medallion_assets_tests.events import event, raw_frame, records


def classified(spark, values, unit="seconds", one_pass=False):
    raw = raw_frame(spark, "listen_events", values)
    return classify(raw, "listen_events", unit, one_pass)


@pytest.mark.parametrize("one_pass", [False, True], ids=["two_passes", "one_pass"])
def test_every_row_gets_exactly_one_outcome(spark, one_pass):
    first = event("2018-10-01T10:00:00")
    values = [
        first,
        first,  # the same event delivered twice
        event("2018-10-01T10:05:00", item=2, user=""),
        event("2018-10-01T10:06:00", item=3, user=None),
        event("2018-10-01T10:07:00", item=4, duration=-3),
        event("2018-10-01T10:08:00", item=5, userId=["x"]),
        event("2018-10-01T10:09:00", item=6),
    ]
    outcomes = Counter(r["reject_reason"] for r in classified(spark, values, one_pass=one_pass).collect())
    assert outcomes == Counter(
        {None: 2, "duplicate": 1, "valid_user_id": 2, "valid_duration": 1, "malformed": 1}
    )


def test_one_pass_and_two_passes_keep_the_same_first_copy_of_each_event(spark):
    first, second = event("2018-10-01T10:00:00"), event("2018-10-01T10:01:00", item=2)
    # offsets 0..5; odd offsets on partition 0, even ones on partition 1: the first copy is the lowest
    # (partition, offset); a rejected row with an event's key (offset 1) is not its first copy
    values = [second, {**first, "duration": -3}, first, first, second, first]
    raw = raw_frame(spark, "listen_events", values)
    raw = raw.withColumn("kafka_partition", (1 - F.col("kafka_offset") % 2).cast("int"))
    both = [
        sorted((r["kafka_partition"], r["kafka_offset"], r["reject_reason"]) for r in classify(raw, "listen_events", one_pass=p).collect())
        for p in (False, True)
    ]
    assert both[0] == both[1] == [
        (0, 1, "valid_duration"), (0, 3, None), (0, 5, "duplicate"),
        (1, 0, None), (1, 2, "duplicate"), (1, 4, "duplicate"),
    ]


def test_bronze_normalises_ids_times_and_durations(spark):
    rows = to_bronze(classified(spark, [event("2018-10-01T10:00:00", user=42, duration=180000)], "milliseconds"), "listen_events").collect()
    row = rows[0]
    assert row["userId"] == "42" and row["sessionId"] == 1
    assert row["duration"] == 180.0
    assert str(row["event_timestamp"]) == "2018-10-01 10:00:00"
    assert (row["latitude"], row["longitude"]) == (27.9, -82.4)
    assert str(row["event_date"]) == "2018-10-01"


def test_raw_rows_have_the_declared_columns_and_spark_reads_them(spark):
    table = parse_records(records("page_view_events", [event("2018-10-01T10:00:00", page="Home")]), "page_view_events")
    assert table.schema == RAW["page_view_events"].arrow_schema()
    df = spark.createDataFrame(table)
    assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [(c.name, c.type) for c in RAW["page_view_events"].columns]
    assert df.first()["page"] == "Home"
