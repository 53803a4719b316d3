"""The local KRaft broker: idempotent start, topics, a large round trip, clean stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from medallion_assets.dev import kafka_local
from medallion_assets.dev.kafka_local import (
    broker_pid,
    broker_ready,
    ensure_broker,
    stop_broker,
)
from medallion_assets.topics import create_topics

PORT = 19192
BIG_MESSAGES_TOPIC = "kl_test_events"
TEST_TOPICS = (BIG_MESSAGES_TOPIC, "kl_test_other")  # not the pipeline's topics: this broker is private
ONE_AND_A_HALF_MB = 1_500_000


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cli_status(home) -> int:
    return subprocess.run(
        [sys.executable, "-m", "medallion_assets.dev.kafka_local", "status", "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    ).returncode


@pytest.mark.timeout(600)  # the very first run downloads the jars
def test_local_broker_lifecycle(tmp_path):
    home = tmp_path / "kafka"
    try:
        bootstrap = ensure_broker(home=home, port=PORT, topics=TEST_TOPICS, partitions=3)
        assert bootstrap == f"127.0.0.1:{PORT}"
        pid = broker_pid(home)
        assert pid is not None
        assert (home / "kafka.pid").read_text().strip() == str(pid)

        # Idempotent: a second call reuses the running broker.
        assert ensure_broker(home=home, port=PORT, topics=TEST_TOPICS) == bootstrap
        assert broker_pid(home) == pid
        assert kafka_local._scan_broker_pids(home) == [pid]
        create_topics(bootstrap, TEST_TOPICS)  # existing topics are fine
        assert broker_ready(bootstrap)
        assert _cli_status(home) == 0

        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        for topic in TEST_TOPICS:
            assert topic in md.topics
            assert len(md.topics[topic].partitions) == 3

        # Round trip of a message larger than Kafka's 1 MB default limit.
        payload = os.urandom(ONE_AND_A_HALF_MB)
        key = uuid.uuid4().hex.encode()
        producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10 * 1024 * 1024})
        errors = []
        producer.produce(BIG_MESSAGES_TOPIC, key=key, value=payload, on_delivery=lambda e, m: errors.append(e))
        assert producer.flush(30) == 0
        assert errors == [None]

        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"kl-test-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        try:
            consumer.subscribe([BIG_MESSAGES_TOPIC])
            received = None
            for _ in range(60):
                msg = consumer.poll(1.0)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                received = msg
                break
        finally:
            consumer.close()
        assert received is not None, "no message consumed within 60 s"
        assert received.key() == key
        assert received.value() == payload
    finally:
        stop_broker(home)

    assert broker_pid(home) is None
    assert kafka_local._scan_broker_pids(home) == []
    assert not (home / "kafka.pid").exists()
    assert _port_free(PORT)
    assert not broker_ready(f"127.0.0.1:{PORT}", timeout_s=1)
    assert _cli_status(home) == 1
    stop_broker(home)  # stopping a stopped broker is a no-op
