"""kafka_offsets_sensor: its logic against a stand-in broker (fast), then against the test broker.

Raw is always a real Delta table written with delta-rs; only the broker's answer is stood in for.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from confluent_kafka import Producer
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, asset, build_sensor_context, materialize
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from medallion_assets.raw.offsets import raw_next_offsets
from medallion_assets.resources.kafka import RECORD_SCHEMA, KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.definitions import defs
from medallion_assets.orchestration.jobs import INGESTS_TAG, WRITES_TAG
from medallion_assets.orchestration.partitions import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from medallion_assets.orchestration.sensors.kafka_offsets import (
    KafkaSensorSettings,
    batch_days,
    ingested,
    kafka_offsets_sensor,
    lags_once_due,
    topic_lags,
)
from medallion_assets.resources.kafka import KafkaUnavailableError
from medallion_assets.sources import TOPIC_ASSETS
from medallion_assets.tables import ALL_TABLES, RAW
from medallion_assets.topics import TOPICS, create_topics


@pytest.fixture
def prefix(kafka_bootstrap):
    """Fresh topics (2 partitions each) under a unique prefix."""
    prefix = f"s{uuid.uuid4().hex[:10]}-"
    create_topics(kafka_bootstrap, [prefix + t for t in TOPICS], partitions=2)
    return prefix


def resources(bootstrap, prefix, root, threshold=1, wait_s=0.0):
    """Sensor resources; a tick below the threshold skips at once unless `wait_s` says otherwise."""
    return {
        "kafka": KafkaResource(bootstrap_servers=bootstrap, topic_prefix=prefix),
        "warehouse": WarehouseResource(root=str(root)),
        "kafka_sensor": KafkaSensorSettings(lag_threshold=threshold, wait_for_records_s=wait_s),
    }


def produce(bootstrap, topic, counts):
    """counts[p] small JSON records on partition p."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, count in counts.items():
        for i in range(count):
            producer.produce(topic, value=json.dumps({"i": i}).encode(), partition=partition)
    assert producer.flush(30) == 0


def hold_in_raw(root, topic, offsets):
    """Append raw rows holding offsets[p] = [o, ...] of partition p (one file per partition)."""
    for partition, held in offsets.items():
        rows = pa.table({"kafka_partition": pa.array([partition] * len(held), pa.int32()), "kafka_offset": held})
        write_deltalake(f"{root}/{RAW[topic].path}", rows, mode="append")


def ingest_in_two_steps(res, instance, root, cursor, key):
    """Of a lag of 3+2 listens and 1 auth event, raw takes 3 listens (a new key for the rest), then the rest (no lag)."""
    hold_in_raw(root, "listen_events", {0: [0, 1, 2]})
    partial = tick(res, cursor=cursor, instance=instance)
    assert partial.run_requests[0].tags["medallion/lag_total"] == "3"
    assert partial.run_requests[0].run_key != key
    hold_in_raw(root, "listen_events", {1: [0, 1]})
    hold_in_raw(root, "auth_events", {1: [0]})
    done = tick(res, cursor=partial.cursor, instance=instance)
    assert done.run_requests == [] and done.skip_message.startswith("Kafka lag 0 below threshold 1")
    assert json.loads(done.cursor)["run_key"] is None
    return done


def tick(resources, cursor=None, instance=None):
    """One evaluation of kafka_offsets_sensor."""
    with build_sensor_context(resources=resources, cursor=cursor, instance=instance or DagsterInstance.ephemeral()) as context:
        return kafka_offsets_sensor.evaluate_tick(context)


def test_no_lag_skips_and_reports_every_topic(kafka_bootstrap, prefix, tmp_path):
    result = tick(resources(kafka_bootstrap, prefix, tmp_path))
    assert result.run_requests == []
    assert "below threshold 1" in result.skip_message
    for topic in TOPICS:
        assert f"{prefix}{topic}=0" in result.skip_message
    assert json.loads(result.cursor)["run_key"] is None


def test_lag_requests_one_ingestion_and_a_replayed_tick_never_a_second(kafka_bootstrap, prefix, tmp_path):
    listens, auth = prefix + "listen_events", prefix + "auth_events"
    produce(kafka_bootstrap, listens, {0: 3, 1: 2})
    produce(kafka_bootstrap, auth, {1: 1})
    res = resources(kafka_bootstrap, prefix, tmp_path)
    instance = DagsterInstance.ephemeral()

    first = tick(res, instance=instance)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key.startswith("ingest-")
    assert request.tags["medallion/lag.listen_events"] == "5"
    assert request.tags["medallion/lag.auth_events"] == "1"
    assert request.tags["medallion/lag.page_view_events"] == "0"
    assert request.tags["medallion/lag_total"] == "6"
    assert json.loads(first.cursor)["run_key"] == request.run_key

    # The same tick replayed (same cursor) asks for the same run key, which Dagster runs once.
    replay = tick(res, instance=instance)
    assert [r.run_key for r in replay.run_requests] == [request.run_key]
    # The next tick, after the request was recorded, does not ask again.
    after = tick(res, cursor=first.cursor, instance=instance)
    assert after.run_requests == []
    assert "already requested" in after.skip_message and request.run_key in after.skip_message

    done = ingest_in_two_steps(res, instance, tmp_path, first.cursor, request.run_key)

    produce(kafka_bootstrap, listens, {1: 4})
    more = tick(res, cursor=done.cursor, instance=instance)
    assert more.run_requests[0].tags["medallion/lag.listen_events"] == "4"


def test_threshold_and_pending_ingestion_run_hold_the_request(kafka_bootstrap, prefix, tmp_path):
    produce(kafka_bootstrap, prefix + "page_view_events", {0: 2})
    assert tick(resources(kafka_bootstrap, prefix, tmp_path, threshold=3)).run_requests == []
    instance = DagsterInstance.ephemeral()
    running = DagsterRun(job_name="ingest_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
    instance.add_run(running)
    held = tick(resources(kafka_bootstrap, prefix, tmp_path), instance=instance)
    assert held.run_requests == [] and running.run_id in held.skip_message


def test_a_tick_below_the_threshold_looks_again_as_soon_as_records_arrive(kafka_bootstrap, prefix, tmp_path):
    listens = prefix + "listen_events"
    produce(kafka_bootstrap, listens, {0: 2})
    hold_in_raw(tmp_path, "listen_events", {0: [0, 1]})  # no lag
    started = time.monotonic()
    idle = tick(resources(kafka_bootstrap, prefix, tmp_path, wait_s=1.0))
    assert idle.run_requests == [] and "lag 0 below threshold" in idle.skip_message
    assert time.monotonic() - started >= 1.0  # it waited for records before skipping

    producer = threading.Timer(1.0, produce, (kafka_bootstrap, listens, {1: 3}))
    producer.start()
    started = time.monotonic()
    try:
        [request] = tick(resources(kafka_bootstrap, prefix, tmp_path, wait_s=20.0)).run_requests
    finally:
        producer.join()
    assert request.tags["medallion/lag.listen_events"] == "3" and request.tags["medallion/lag_total"] == "3"
    assert time.monotonic() - started < 10  # at the records, not at the end of the wait


@pytest.mark.fast
def test_broker_down_skips_naming_the_broker_quickly(tmp_path):
    started = time.monotonic()
    result = tick(resources("127.0.0.1:1", "none-", tmp_path))
    assert time.monotonic() - started < 10
    assert result.run_requests == []
    assert "127.0.0.1:1" in result.skip_message


@pytest.mark.fast
def test_raw_offsets_from_file_statistics_or_columns(tmp_path):
    assert raw_next_offsets(None) == {}  # no table yet
    by_partition = str(tmp_path / "by_partition")
    write_deltalake(by_partition, pa.table({"kafka_partition": pa.array([0, 0], pa.int32()), "kafka_offset": [4, 9]}))
    more = pa.table({"kafka_partition": pa.array([1], pa.int32()), "kafka_offset": [2]})
    write_deltalake(by_partition, more, mode="append")
    assert raw_next_offsets(DeltaTable(by_partition)) == {0: 10, 1: 3}
    mixed = str(tmp_path / "mixed")
    write_deltalake(mixed, pa.table({"kafka_partition": pa.array([0, 1, 1], pa.int32()), "kafka_offset": [7, 3, 5]}))
    assert raw_next_offsets(DeltaTable(mixed)) == {0: 8, 1: 6}
    no_stats = str(tmp_path / "no_stats")
    rows = pa.table({"kafka_partition": pa.array([0, 0], pa.int32()), "kafka_offset": [4, 9]})
    write_deltalake(no_stats, rows, configuration={"delta.dataSkippingNumIndexedCols": "0"})
    assert raw_next_offsets(DeltaTable(no_stats)) == {0: 10}


@pytest.mark.fast
def test_raw_offsets_from_the_commits_transactions_over_statistics(tmp_path):
    """Raw commits record each Kafka partition's next offset; those win over files holding several partitions."""
    both = str(tmp_path / "both")
    rows = pa.table({"kafka_partition": pa.array([0, 1, 1], pa.int32()), "kafka_offset": [7, 3, 5]})
    transactions = [Transaction("raw/t/0", 8), Transaction("raw/t/1", 9), Transaction("raw/other/0", 99)]
    write_deltalake(both, rows, commit_properties=CommitProperties(app_transactions=transactions))
    assert raw_next_offsets(DeltaTable(both), "t", [0, 1, 2]) == {0: 8, 1: 9}  # 1: records 6..8 were compacted away
    assert raw_next_offsets(DeltaTable(both), "none", [0]) == {0: 8, 1: 6}  # no transactions: the columns


# --------------------------------------------------------------------------- #
# The same logic with a stand-in broker: no JVM, no broker
# --------------------------------------------------------------------------- #


class StandInBroker(KafkaResource):
    """What a broker would answer: high watermarks per logical topic, partition = list index, and every
    record's value (`value`: one JSON text for all, without a day unless a test gives one)."""

    high: dict[str, list[int]] = {}
    down: bool = False
    value: str = '{"i": 0}'
    arrivals: list[dict[str, list[int]]] = []  # the watermarks after each wait for records, in order
    waits: list[dict[str, dict[int, int]]] = []  # the offsets each wait started from

    def wait_for_records(self, past, wait_s):
        self.waits.append({name: dict(offsets) for name, offsets in past.items()})
        if not self.arrivals:
            return False
        self.high.update(self.arrivals.pop(0))
        return True

    def topic_watermarks(self, names, timeout_s=None):
        if self.down:
            raise KafkaUnavailableError(f"Kafka broker {self.settings()['bootstrap.servers']} did not answer")
        return {name: {p: (0, end) for p, end in enumerate(self.high.get(name, []))} for name in names}

    def read_records(self, name, ranges, chunk_rows=100_000):
        rows = [(p, offset) for p, (start, end) in sorted(ranges.items()) for offset in range(start, end)]
        yield pa.table(
            {
                "topic": [self.topic(name)] * len(rows),
                "partition": pa.array([p for p, _ in rows], pa.int32()),
                "offset": pa.array([o for _, o in rows], pa.int64()),
                "timestamp": pa.array([0] * len(rows), pa.timestamp("us", tz="UTC")),
                "key": pa.array([None] * len(rows), pa.binary()),
                "value": pa.array([self.value.encode()] * len(rows), pa.binary()),
            },
            schema=RECORD_SCHEMA,
        )


def stand_in(root, high=None, threshold=1, down=False, value=None):
    """Sensor resources: the stand-in broker (prefix 'x-'), a warehouse at root, the threshold."""
    kafka = StandInBroker(bootstrap_servers="broker.invalid:9092", topic_prefix="x-", high=high or {}, down=down, **({"value": value} if value else {}))
    return {**resources("unused", "x-", root, threshold), "kafka": kafka}


def listen_at(day: date) -> str:
    """A listen event's JSON on `day`."""
    ts = int(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp() * 1000)
    return json.dumps({"ts": ts, "userId": "7", "sessionId": 1, "song": "s", "artist": "a", "duration": 200.0})


@pytest.mark.fast
def test_stand_in_lag_whose_newest_records_have_a_day_is_one_run_from_raw_to_gold_of_that_day(tmp_path):
    day = date(2024, 1, 2)
    res = stand_in(tmp_path, {"listen_events": [3, 2], "auth_events": [0, 1]}, value=listen_at(day))
    with build_sensor_context(resources=res, instance=DagsterInstance.ephemeral(), repository_def=defs.get_repository_def()) as context:
        [request] = kafka_offsets_sensor.evaluate_tick(context).run_requests
    assert request.job_name == "medallion_job" and request.run_key.startswith("ingest-")
    assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (day.isoformat(),) * 2
    assert request.tags["medallion/lag_total"] == "6" and request.tags.items() >= {**INGESTS_TAG, **WRITES_TAG}.items()
    # raw and everything below it; the dimensions of the reference files and the calendar too, never built here
    assert set(request.asset_selection) == {t.asset_key for t in ALL_TABLES}


@pytest.mark.fast
def test_stand_in_lag_whose_newest_records_have_no_day_only_ingests(tmp_path):
    [request] = tick(stand_in(tmp_path, {"listen_events": [3, 2]})).run_requests
    assert request.job_name == "ingest_job" and ASSET_PARTITION_RANGE_START_TAG not in request.tags


@pytest.mark.fast
def test_stand_in_a_tick_looks_again_at_each_arrival_until_the_lag_reaches_the_threshold(tmp_path):
    arrivals = [{"listen_events": [2]}, {"listen_events": [4]}, {"listen_events": [9]}]
    kafka = StandInBroker(bootstrap_servers="broker.invalid:9092", topic_prefix="x-", high={"listen_events": [1]}, arrivals=arrivals)
    warehouse = WarehouseResource(root=str(tmp_path))
    settings = KafkaSensorSettings(lag_threshold=3, wait_for_records_s=30)
    lags = lags_once_due(kafka, warehouse, settings, topic_lags(kafka, warehouse, 1.0))
    assert {lag.topic: lag.lag for lag in lags} == {t: 4 if t == "listen_events" else 0 for t in TOPICS}
    assert [wait["listen_events"] for wait in kafka.waits] == [{0: 1}, {0: 2}]  # each from the end offsets last seen
    assert kafka.arrivals == [{"listen_events": [9]}]  # no wait once the threshold is reached

    quiet = StandInBroker(bootstrap_servers="broker.invalid:9092", topic_prefix="x-", high={"listen_events": [1]})
    assert sum(lag.lag for lag in lags_once_due(quiet, warehouse, settings, topic_lags(quiet, warehouse, 1.0))) == 1
    never = KafkaSensorSettings(lag_threshold=3, wait_for_records_s=0)
    lags_once_due(quiet, warehouse, never, topic_lags(quiet, warehouse, 1.0))
    assert len(quiet.waits) == 1  # a wait that found nothing ends the tick's waiting; a wait of 0 never waits


@pytest.mark.fast
def test_the_batch_run_covers_the_consecutive_days_of_the_newest_record():
    d = date(2024, 1, 10)
    assert batch_days(set()) is None
    assert batch_days({d}) == (d, d)
    assert batch_days({d, d - timedelta(days=1), d - timedelta(days=5)}) == (d - timedelta(days=1), d)


@pytest.mark.fast
def test_stand_in_no_lag_reports_every_topic_and_requests_nothing(tmp_path):
    result = tick(stand_in(tmp_path))
    assert result.run_requests == []
    assert result.skip_message == "Kafka lag 0 below threshold 1; lag " + ", ".join(f"x-{t}=0" for t in TOPICS)
    cursor = json.loads(result.cursor)
    assert {k: cursor[k] for k in ("run_key", "lag")} == {"run_key": None, "lag": {t: 0 for t in TOPICS}}


@pytest.mark.fast
def test_stand_in_lag_requests_once_per_set_of_offsets(tmp_path):
    res = stand_in(tmp_path, {"listen_events": [3, 2], "auth_events": [0, 1]})
    instance = DagsterInstance.ephemeral()
    first = tick(res, instance=instance)
    [request] = first.run_requests
    assert request.run_key.startswith("ingest-")
    assert {k: v for k, v in request.tags.items() if k.startswith("medallion/")} == {
        "medallion/lag.page_view_events": "0",
        "medallion/lag.listen_events": "5",
        "medallion/lag.auth_events": "1",
        "medallion/lag.status_change_events": "0",
        "medallion/lag_total": "6",
    }
    cursor = json.loads(first.cursor)
    assert {k: cursor[k] for k in ("run_key", "lag")} == {
        "run_key": request.run_key,
        "lag": {"page_view_events": 0, "listen_events": 5, "auth_events": 1, "status_change_events": 0},
    }
    assert [r.run_key for r in tick(res, instance=instance).run_requests] == [request.run_key]  # replay
    after = tick(res, cursor=first.cursor, instance=instance)
    assert after.run_requests == []
    assert after.skip_message.startswith(f"Ingestion of these offsets already requested (run key {request.run_key})")

    ingest_in_two_steps(res, instance, tmp_path, first.cursor, request.run_key)


@pytest.mark.fast
def test_stand_in_each_topic_is_observed_with_its_end_offsets_and_lag_once_a_minute(tmp_path):
    hold_in_raw(tmp_path, "listen_events", {0: [0, 1]})  # raw holds offsets 0..1 of partition 0
    res = stand_in(tmp_path, {"listen_events": [3, 2]})
    first = tick(res)
    observed = {e.asset_key: e.metadata for e in first.asset_events}
    assert set(observed) == {TOPIC_ASSETS[t].key for t in TOPICS}
    listens = observed[TOPIC_ASSETS["listen_events"].key]
    assert listens["end_offsets"].value == {"0": 3, "1": 2}
    assert (listens["end_offset_total"].value, listens["lag"].value) == (5, 3)
    assert observed[TOPIC_ASSETS["auth_events"].key]["lag"].value == 0
    assert tick(res, cursor=first.cursor).asset_events == []  # the next tick, seconds later, does not repeat them
    an_hour_ago = json.dumps({**json.loads(first.cursor), "observed_at": time.time() - 3600})
    assert len(tick(res, cursor=an_hour_ago).asset_events) == len(TOPICS)


@pytest.mark.fast
def test_stand_in_the_same_offsets_always_give_the_same_run_key(tmp_path):
    high = {"page_view_events": [4], "status_change_events": [1, 1]}
    keys = {tick(stand_in(tmp_path / str(i), high)).run_requests[0].run_key for i in range(2)}
    other = tick(stand_in(tmp_path / "other", {**high, "page_view_events": [5]})).run_requests[0].run_key
    assert len(keys) == 1 and other not in keys


@pytest.mark.fast
def test_stand_in_threshold_and_a_pending_ingestion_hold_the_request(tmp_path):
    high = {"page_view_events": [2]}
    below = tick(stand_in(tmp_path, high, threshold=3))
    assert below.run_requests == [] and below.skip_message.startswith("Kafka lag 2 below threshold 3")
    instance = DagsterInstance.ephemeral()
    running = DagsterRun(job_name="ingest_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTING)
    instance.add_run(running)
    held = tick(stand_in(tmp_path, high), instance=instance)
    assert held.run_requests == []
    assert held.skip_message.startswith(f"Ingestion run {running.run_id} is still queued or running")
    assert json.loads(held.cursor)["run_key"] is None  # nothing requested: the next tick may ask


@pytest.mark.fast
def test_stand_in_broker_down_skips_naming_it_and_keeps_the_cursor(tmp_path):
    result = tick(stand_in(tmp_path, down=True), cursor='{"run_key": "ingest-x", "lag": {}}')
    assert result.run_requests == []
    assert result.skip_message.startswith("Kafka unreachable: Kafka broker broker.invalid:9092 did not answer")
    assert result.cursor == '{"run_key": "ingest-x", "lag": {}}'


@pytest.mark.fast
def test_a_batch_run_holds_the_next_request_until_its_raw_steps_are_done(tmp_path):
    """A running batch run that has not materialized raw yet holds the next request; one that materialized
    every raw table it selects does not (the next batch's run queues behind it in the pool)."""
    high = {"page_view_events": [2]}
    instance = DagsterInstance.ephemeral()
    waiting = DagsterRun(job_name="medallion_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED, tags=INGESTS_TAG)
    instance.add_run(waiting)
    held = tick(stand_in(tmp_path, high), instance=instance)
    assert held.run_requests == [] and waiting.run_id in held.skip_message

    # a run whose raw steps materialized every raw table, seen while it still runs
    stubs = [asset(key=t.asset_key)(lambda: None) for t in RAW.values()]
    past_raw = instance.get_run_by_id(materialize(stubs, instance=instance, tags=INGESTS_TAG).run_id).with_status(DagsterRunStatus.STARTED)
    assert ingested(instance, past_raw) and not ingested(instance, waiting)
    assert not ingested(instance, past_raw.with_status(DagsterRunStatus.STARTING))
