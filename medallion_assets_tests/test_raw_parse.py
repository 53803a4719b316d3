"""raw parsing: one row per record, typed fields, a reason for every malformed record."""

from datetime import date, datetime, timedelta, timezone

from medallion_assets.raw.parse import parse_records
from medallion_assets_tests.events import event, records


def test_each_kind_of_bad_input_is_kept_with_a_reason(spark):
    values = [
        event("2018-10-01T10:00:00"),
        b"{not json",
        b"[1, 2]",
        b'{"ts": 1538388000000, "userId": "\xff\xfe"}',
        event("2018-10-01T10:00:00", ts="yesterday"),
        event("2018-10-01T10:00:00", userId={"id": 7}),
        event("2018-10-01T10:00:00", extra_field="kept in value"),
        b"{'ts': 1538388000000, 'userId': '7'}",
    ]
    rows = parse_records(records(spark, "listen_events", values), "listen_events").orderBy("kafka_offset").collect()
    assert [r["parse_error"] for r in rows] == [
        None, "invalid JSON object", "invalid JSON object", "not UTF-8", "wrong type: ts", "wrong type: userId", None,
        "invalid JSON object",
    ]
    assert len(rows) == len(values)
    assert rows[3]["value_bytes"] == values[3]
    assert "extra_field" in rows[6]["value"]
    assert [r["event_date"] for r in rows] == [date(2018, 10, 1), None, None, None, None, date(2018, 10, 1), date(2018, 10, 1), None]


def test_both_dialects_parse_to_the_same_types(spark):
    eventsim = event("2018-10-01T10:00:00", user=42, sessionId=9, duration=215.3)
    seed = event("2018-10-01T10:00:00", user="42", sessionId="9", duration=215300, prevLevel="free")
    rows = parse_records(records(spark, "listen_events", [eventsim, seed]), "listen_events").collect()
    assert {r["userId"] for r in rows} == {"42"}
    assert {r["sessionId"] for r in rows} == {9}
    assert sorted(r["duration"] for r in rows) == [215.3, 215300.0]
    assert all(r["parse_error"] is None for r in rows)


def test_timestamps_out_of_range_do_not_break_parsing(spark):
    rows = parse_records(records(spark, "auth_events", [event("2018-10-01T00:00:00", ts=10**18)]), "auth_events").collect()
    assert rows[0]["event_date"] is None
    assert rows[0]["parse_error"] is None


def test_a_batch_is_stamped_with_its_ingestion_time(spark):
    at = datetime(2026, 11, 29, 15, 30, 1, 123456, tzinfo=timezone.utc)
    values = [event("2018-10-01T10:00:00"), b"{not json"]
    rows = parse_records(records(spark, "auth_events", values), "auth_events", at).collect()
    assert [r["ingestion_timestamp"].astimezone(timezone.utc) for r in rows] == [at] * len(values)
    now = parse_records(records(spark, "auth_events", values[:1]), "auth_events").first()["ingestion_timestamp"]
    assert abs(now.astimezone(timezone.utc) - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_a_new_batch_compiles_no_new_code(spark):
    """The stamp differs per batch; if it reached the generated code, every batch would compile anew."""
    compiles = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    batch = records(spark, "listen_events", [event("2018-10-01T10:00:00"), b"{not json"])

    def parse(at: datetime) -> None:
        parse_records(batch, "listen_events", at).write.format("noop").mode("overwrite").save()

    parse(datetime(2026, 11, 28, tzinfo=timezone.utc))
    before = compiles.getCount()
    parse(datetime(2026, 11, 29, 15, 30, 1, tzinfo=timezone.utc))
    assert compiles.getCount() == before
