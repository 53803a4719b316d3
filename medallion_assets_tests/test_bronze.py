"""bronze classification: valid, dropped by expectation, duplicate or malformed, never lost."""

from collections import Counter

from medallion_assets.bronze.transform import classify, to_bronze
from medallion_assets.raw.parse import parse_records
from medallion_assets.tables import RAW
from medallion_assets_tests.events import event, raw_frame, records


def classified(spark, values, unit="seconds"):
    raw = raw_frame(spark, "listen_events", values)
    return classify(raw, "listen_events", unit)


def test_every_row_gets_exactly_one_outcome(spark):
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
    outcomes = Counter(r["reject_reason"] for r in classified(spark, values).collect())
    assert outcomes == Counter(
        {None: 2, "duplicate": 1, "valid_user_id": 2, "valid_duration": 1, "malformed": 1}
    )


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
