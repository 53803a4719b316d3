"""raw parsing: one row per record, typed fields, a reason for every malformed record (no JVM)."""

import json
import math
from datetime import date, datetime, timedelta, timezone

import pytest
from confluent_kafka import KafkaException

from medallion_assets.raw.parse import parse_records
from medallion_assets_tests.events import event, records

pytestmark = pytest.mark.fast


def parsed(topic: str, values: list) -> list[dict]:
    """The raw rows of the values, as dicts."""
    return parse_records(records(topic, values), topic).to_pylist()


def with_field(name: str, literal: str) -> bytes:
    """A listen whose field `name` holds the JSON text `literal`."""
    return json.dumps({**event("2018-10-01T10:00:00"), name: "@@"}).replace('"@@"', literal).encode()


def test_each_kind_of_bad_input_is_kept_with_a_reason():
    values = [
        event("2018-10-01T10:00:00"),
        b"{not json",
        b"[1, 2]",
        b'{"ts": 1538388000000, "userId": "\xff\xfe"}',
        event("2018-10-01T10:00:00", ts="yesterday"),
        event("2018-10-01T10:00:00", userId={"id": 7}),
        event("2018-10-01T10:00:00", extra_field="kept in value"),
        b"{'ts': 1538388000000, 'userId': '7'}",
        None,
        b"",
    ]
    rows = parsed("listen_events", values)
    assert [r["parse_error"] for r in rows] == [
        None, "invalid JSON object", "invalid JSON object", "not UTF-8", "wrong type: ts", "wrong type: userId", None,
        "invalid JSON object", "empty message", "invalid JSON object",
    ]
    assert [r["kafka_offset"] for r in rows] == list(range(len(values)))
    assert rows[3]["value_bytes"] == values[3] and rows[3]["value"].endswith('"\ufffd\ufffd"}')
    assert "extra_field" in rows[6]["value"]
    assert rows[8]["value"] is None and rows[8]["value_bytes"] is None
    assert [r["event_date"] for r in rows] == [date(2018, 10, 1), None, None, None, None, date(2018, 10, 1), date(2018, 10, 1), None, None, None]


def test_both_dialects_parse_to_the_same_types():
    eventsim = event("2018-10-01T10:00:00", user=42, sessionId=9, duration=215.3)
    seed = event("2018-10-01T10:00:00", user="42", sessionId="9", duration=215300, prevLevel="free")
    rows = parsed("listen_events", [eventsim, seed])
    assert {r["userId"] for r in rows} == {"42"}
    assert {r["sessionId"] for r in rows} == {9}
    assert sorted(r["duration"] for r in rows) == [215.3, 215300.0]
    assert all(r["parse_error"] is None for r in rows)


@pytest.mark.parametrize(
    ("name", "literal", "typed"),
    [
        ("sessionId", '" 7 "', 7), ("sessionId", "-0", 0), ("sessionId", "-9223372036854775808", -(2**63)),
        ("sessionId", "1.0", None), ("sessionId", "1e3", None), ("sessionId", "9223372036854775808", None),
        ("sessionId", "true", None), ("sessionId", '""', None), ("sessionId", "[1]", None), ("sessionId", '"0x10"', None),
        ("lat", "12", 12.0), ("lat", '" 1.5 "', 1.5), ("lat", '"-Infinity"', float("-inf")), ("lat", '"+INF"', float("inf")),
        ("lat", "1e400", None), ("lat", '""', None), ("lat", '{"a": 1}', None), ("lat", '"1_0"', None),
        ("userId", "7.50", "7.5"), ("userId", "true", "true"), ("userId", '""', ""), ("userId", '"caf\\u00e9"', "café"),
        ("userId", "[1, 2]", None), ("song", '"[Untitled]"', "[Untitled]"), ("song", '"{x}"', "{x}"),
    ],
)
def test_a_field_takes_its_type_or_names_itself_wrong(name, literal, typed):
    row = parsed("listen_events", [with_field(name, literal)])[0]
    assert row[name] == typed
    assert row["parse_error"] == (None if typed is not None else f"wrong type: {name}")
    assert row["event_date"] == date(2018, 10, 1)


def test_a_json_null_is_a_missing_field_and_nan_stays_nan():
    row = parsed("listen_events", [with_field("sessionId", "null")])[0]
    assert row["sessionId"] is None and row["parse_error"] is None
    nan = parsed("listen_events", [with_field("lat", '"NaN"')])[0]
    assert math.isnan(nan["lat"]) and nan["parse_error"] is None


@pytest.mark.parametrize(("sent", "success"), [(True, True), ("true", True), (1, True), ("yes", True), ("N", False), ("maybe", None)])
def test_booleans_read_as_spark_casts_them(sent, success):
    row = parsed("auth_events", [event("2018-10-01T10:00:00", success=sent)])[0]
    assert row["success"] is success
    assert row["parse_error"] == (None if success is not None else "wrong type: success")


def test_timestamps_out_of_range_do_not_break_parsing():
    rows = parsed("auth_events", [event("2018-10-01T00:00:00", ts=10**18)])
    assert rows[0]["event_date"] is None
    assert rows[0]["parse_error"] is None


def test_a_batch_is_stamped_with_its_ingestion_time():
    at = datetime(2026, 11, 29, 15, 30, 1, 123456, tzinfo=timezone.utc)
    values = [event("2018-10-01T10:00:00"), b"{not json"]
    rows = parse_records(records("auth_events", values), "auth_events", at).to_pylist()
    assert [r["ingestion_timestamp"] for r in rows] == [at] * len(values)
    now = parsed("auth_events", values[:1])[0]["ingestion_timestamp"]
    assert abs(now - datetime.now(timezone.utc)) < timedelta(minutes=1)



def test_prefetching_keeps_order_and_raises_the_readers_error():
    from medallion_assets.raw.engines import prefetched

    def failing():
        yield from range(5)
        raise KafkaException("broker gone")

    assert list(prefetched(iter(range(10)))) == list(range(10))
    got = []
    with pytest.raises(KafkaException, match="broker gone"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == list(range(5))


def test_a_writer_that_stops_early_stops_the_reader():
    from medallion_assets.raw.engines import prefetched

    read = []

    def endless():
        n = 0
        while True:
            read.append(n)
            yield n
            n += 1

    items = prefetched(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # joins the reader thread
    assert len(read) <= 3 + 2 + 1


def test_what_the_contract_does_not_describe_is_rescued_as_a_json_object():
    values = [
        event("2018-10-01T10:00:00"),  # the contract's fields only
        event("2018-10-01T10:00:00", user=7, sessionId="12"),  # ids as numbers or strings: both producers do
        event("2018-10-01T10:00:00", bitrate=320, device={"os": "x", "tags": [1, 2]}, note=None),  # outside it
        event("2018-10-01T10:00:00", duration="200.5", city=12),  # contract fields of another JSON kind
        with_field("song", '"[Untitled]"'),  # a string that looks nested stays a string
        b"{not json",
    ]
    rows = parsed("listen_events", values)
    rescued = [None if r["rescued"] is None else json.loads(r["rescued"]) for r in rows]
    assert rescued == [
        None,
        None,
        {"bitrate": 320, "device": {"os": "x", "tags": [1, 2]}, "note": None},
        {"duration": "200.5", "city": 12},
        None,
        None,
    ]
    assert (rows[3]["duration"], rows[3]["city"], rows[3]["parse_error"]) == (200.5, "12", None)  # still read


def test_a_field_of_another_topic_is_outside_this_topics_contract():
    (listen,) = parsed("listen_events", [event("2018-10-01T10:00:00", page="NextSong", status=200)])
    (view,) = parsed("page_view_events", [event("2018-10-01T10:00:00", page="NextSong", status=200)])
    assert json.loads(listen["rescued"]) == {"page": "NextSong", "status": 200} and view["rescued"] is None
