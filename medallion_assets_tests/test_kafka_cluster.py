"""A secured 3-broker Kafka: raw through a broker's crash, a sensor tick through the cluster's stop, a password kept.

Every client here (generator, sensor, Spark's Kafka source) reaches the cluster as `kafka_local up --brokers 3
--security sasl_ssl` tells a shell to: through the KAFKA_* environment variables.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from dagster import Definitions, build_sensor_context
from deltalake import DeltaTable

from medallion_assets.definitions import all_assets
from medallion_assets.dev import kafka_local
from medallion_assets.dev.kafka_local import Cluster, Node, broker_pid, ensure_cluster, stop_cluster
from medallion_assets.generator import Event, GeneratorConfig, generate
from medallion_assets.orchestration.jobs import ingest_job
from medallion_assets.orchestration.sensors.kafka_offsets import KafkaSensorSettings, kafka_offsets_sensor
from medallion_assets.raw import engines as raw_engines
from medallion_assets.resources import kafka as kafka_resource
from medallion_assets.tables import RAW
from medallion_assets.topics import TOPICS, client_settings, environment_lines, replication_for
from medallion_assets_tests.pipeline import LivePipeline

EVENTS = GeneratorConfig(users=4, days=1, start_date=date(2024, 8, 1), seed=11)


@pytest.fixture
def secured(kafka_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """The cluster, with the environment its `up` prints for clients (user, password, CA) set."""
    for line in environment_lines(kafka_cluster.settings()):
        key, value = line.split("=", 1)
        monkeypatch.setenv(key, value)
    return kafka_cluster


@pytest.fixture
def pipeline(secured: Cluster, tmp_path: Path) -> LivePipeline:
    """Fresh topics on the cluster and an empty warehouse."""
    return LivePipeline.create(secured.bootstrap, tmp_path / "warehouse")


def produced(pipeline: LivePipeline) -> list[Event]:
    """A small day of events, produced to the pipeline's topics."""
    events = list(generate(EVENTS))
    pipeline.produce(events)
    return events


def keys_in_raw(pipeline: LivePipeline, topic: str) -> Counter:
    """How often each key is in raw, and that no (partition, offset) is there twice."""
    rows = DeltaTable(pipeline.uri(RAW[topic])).to_pyarrow_table(columns=["kafka_key", "kafka_partition", "kafka_offset"])
    coordinates = list(zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist()))
    assert len(set(coordinates)) == len(coordinates), f"raw/{topic} holds a record twice"
    return Counter(rows["kafka_key"].to_pylist())


def assert_raw_holds_each_once(pipeline: LivePipeline, events: Sequence[Event]) -> None:
    """Every produced record is in raw exactly once: the same keys, each as often as produced."""
    for topic in TOPICS:
        expected = Counter(e.key.decode() if e.key is not None else None for e in events if e.topic == topic)
        assert keys_in_raw(pipeline, topic) == expected, topic


def leader_of(cluster: Cluster, settings: dict[str, str], topic: str) -> Node:
    """The node leading partition 0 of a topic."""
    metadata = AdminClient(settings).list_topics(topic, timeout=10)
    leader = metadata.topics[topic].partitions[0].leader
    return next(node for node in cluster.nodes() if node.node_id == leader)


class Collect(logging.Handler):
    """Every record a logger handles, message and attributes, as the daemon's tick log keeps them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__!r}")


def tick(pipeline: LivePipeline, cursor: str | None = None, log: logging.Handler | None = None, timeout_s: float = 10):
    """One evaluation of kafka_offsets_sensor on the pipeline's topics and warehouse; `log` gets the tick's log."""
    resources = {**pipeline.resources, "kafka_sensor": KafkaSensorSettings(broker_timeout_s=timeout_s)}
    with build_sensor_context(resources=resources, cursor=cursor, instance=pipeline.instance) as context:
        if log is not None:
            context.log.addHandler(log)
        return kafka_offsets_sensor.evaluate_tick(context)


def run_ingest_job(pipeline: LivePipeline, tags: dict[str, str]):
    """The ingestion of the run a sensor requested, in process (its days below raw, if any, are not this module's)."""
    defs = Definitions(assets=all_assets, jobs=[ingest_job], resources=pipeline.resources)
    lag = {k: v for k, v in tags.items() if k.startswith("medallion/lag")}
    return defs.resolve_job_def(ingest_job.name).execute_in_process(instance=pipeline.instance, tags=lag)


def test_a_broker_killed_while_raw_ingests_leaves_every_record_in_raw_once(pipeline, secured, spark, monkeypatch):
    events = produced(pipeline)
    settings = secured.settings()
    read = raw_engines.parsed_batches
    killed: list[Node] = []

    def kill_a_leader_then_read(kafka, topic, *args):  # noqa: ANN001, ANN002
        """Once the first raw step has its offset ranges, SIGKILL the leader of the topic it reads."""
        if not killed:
            node = leader_of(secured, settings, kafka.topic(topic))
            os.kill(broker_pid(node.home), signal.SIGKILL)
            killed.append(node)
        return read(kafka, topic, *args)

    monkeypatch.setattr(raw_engines, "parsed_batches", kill_a_leader_then_read)
    try:
        assert pipeline.ingest().success
    finally:
        monkeypatch.setattr(raw_engines, "parsed_batches", read)
        ensure_cluster(secured, topics=())  # the killed broker again
    assert killed and broker_pid(killed[0].home) is not None
    assert_raw_holds_each_once(pipeline, events)
    assert pipeline.ingest().success  # with all brokers back: nothing new, nothing twice
    assert_raw_holds_each_once(pipeline, events)


def test_a_tick_while_the_cluster_stops_skips_naming_its_brokers_then_the_next_ingests_all(pipeline, secured, spark, monkeypatch):
    events = produced(pipeline)
    ask = kafka_resource.watermarks

    def stop_the_cluster_then_ask(*args, **kwargs):  # noqa: ANN002, ANN003
        stop_cluster(secured.home)
        return ask(*args, **kwargs)

    monkeypatch.setattr(kafka_resource, "watermarks", stop_the_cluster_then_ask)
    try:
        skipped = tick(pipeline, timeout_s=3)
    finally:
        monkeypatch.setattr(kafka_resource, "watermarks", ask)
        ensure_cluster(secured, topics=())
    assert skipped.run_requests == [] and skipped.skip_message.startswith("Kafka unreachable")
    for node in secured.nodes():
        assert f"127.0.0.1:{node.port}" in skipped.skip_message

    requested = tick(pipeline, skipped.cursor)
    assert len(requested.run_requests) == 1, requested.skip_message
    request = requested.run_requests[0]
    assert request.tags["medallion/lag_total"] == str(len(events))
    assert run_ingest_job(pipeline, request.tags).success
    assert_raw_holds_each_once(pipeline, events)


def test_the_password_is_in_no_event_metadata_spark_conf_or_log(pipeline, secured, spark):
    password = secured.settings()["sasl.password"]
    assert len(password) >= 24 and password.isprintable()  # generated, distinctive: a hit could not be chance
    events = produced(pipeline)
    sensor_log = Collect()
    ticked = tick(pipeline, log=sensor_log)
    result = run_ingest_job(pipeline, ticked.run_requests[0].tags)
    assert result.success
    assert_raw_holds_each_once(pipeline, events)

    records = pipeline.instance.all_logs(result.run_id)
    materializations = [r.asset_materialization for r in records if r.asset_materialization is not None]
    searched = {
        "event log": "\n".join(repr(r) for r in records),
        "materialization metadata": repr([(m.asset_key, m.metadata) for m in materializations]),
        "run": repr(pipeline.instance.get_run_by_id(result.run_id)),
        "spark conf": repr(spark.sparkContext.getConf().getAll()) + repr(spark.conf.getAll),
        "sensor tick": repr(ticked) + "\n".join(sensor_log.lines),
    }
    assert len(materializations) == len(TOPICS) and all(m.metadata for m in materializations)
    assert pipeline.prefix in searched["materialization metadata"]  # the search reads real material
    assert "Kafka lag of" in searched["sensor tick"]
    for where, text in searched.items():
        assert password not in text, f"the SASL password is in the {where}"


@pytest.mark.fast
def test_replication_follows_the_broker_count():
    assert replication_for(1) == (1, 1)
    assert replication_for(3) == (3, 2)
    assert replication_for(5) == (3, 2)


@pytest.mark.fast
def test_the_printed_environment_gives_back_the_cluster_s_settings(tmp_path, monkeypatch):
    cluster = Cluster(tmp_path, port=29992, secured=True)
    cluster.security.folder.mkdir()
    cluster.security.credentials.write_text(json.dumps({"medallion": "p" * 32, "broker": "b" * 32}))
    for line in environment_lines(cluster.settings()):
        key, value = line.split("=", 1)
        monkeypatch.setenv(key, value)
    assert client_settings() == cluster.settings()
    assert client_settings()["bootstrap.servers"] == "127.0.0.1:29992,127.0.0.1:29993,127.0.0.1:29994"


@pytest.mark.fast
def test_a_secured_node_s_config_is_its_owner_s_only(tmp_path):
    cluster = Cluster(tmp_path, port=29992, secured=True)
    cluster.security.folder.mkdir()
    cluster.security.credentials.write_text(json.dumps({"medallion": "p" * 32, "broker": "b" * 32}))
    node = cluster.nodes()[1]
    config = kafka_local._write_config(node)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    props = kafka_local._read_properties(config)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:29993,CONTROLLER://127.0.0.1:29996"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29995,2@127.0.0.1:29996,3@127.0.0.1:29997"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
    assert props["ssl.truststore.location"] == str(cluster.security.ca)
