"""medallion_assets.topics: the one home of topic names, the prefix rule and the client settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medallion_assets import topics
from medallion_assets.dev import kafka_local
from medallion_assets.generator import GeneratorConfig
from medallion_assets.generator import TOPICS as GENERATOR_TOPICS
from medallion_assets.generator.__main__ import parse_args
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.schemas import TOPIC_EXTRA_FIELDS
from medallion_assets.schemas import TOPICS as SCHEMA_TOPICS
from medallion_assets.tables import BRONZE, RAW

pytestmark = pytest.mark.fast

TOPICS_PY = Path(topics.__file__)
SECURITY_ENV = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "ingest",
    "KAFKA_SASL_PASSWORD": "not-a-real-secret",
    "KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
}


def test_every_user_of_topic_names_takes_them_from_topics_py():
    assert topics.TOPICS == ("page_view_events", "listen_events", "auth_events", "status_change_events")
    assert SCHEMA_TOPICS is topics.TOPICS and set(TOPIC_EXTRA_FIELDS) == set(topics.TOPICS)
    assert GENERATOR_TOPICS is topics.TOPICS
    assert kafka_local.DEFAULT_TOPICS is topics.TOPICS
    assert list(RAW) == list(BRONZE) == list(topics.TOPICS)  # one raw and one bronze table per topic


def test_topics_py_needs_no_pyspark():
    """Loaded on its own with pyspark made unimportable, it still gives the names and settings."""
    script = f"""
import importlib.abc, importlib.util, json, sys

class NoPyspark(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyspark", "delta"):
            raise ImportError("pyspark is not installed here")
        return None

sys.meta_path.insert(0, NoPyspark())
spec = importlib.util.spec_from_file_location("topics_alone", {str(TOPICS_PY)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({{"topics": list(module.TOPICS), "settings": module.client_settings()}}))
"""
    env = {"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": "b1:9092,b2:9092"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"topics": list(topics.TOPICS), "settings": {"bootstrap.servers": "b1:9092,b2:9092"}}


def test_client_settings_read_the_environment_when_called(monkeypatch):
    for env in (topics.BOOTSTRAP_ENV, *topics.CLIENT_SETTINGS_FROM_ENV.values()):
        monkeypatch.delenv(env, raising=False)
    assert topics.client_settings() == {"bootstrap.servers": "127.0.0.1:9092"}
    monkeypatch.setenv(topics.BOOTSTRAP_ENV, "kafka-1:9093")
    for env, value in SECURITY_ENV.items():
        monkeypatch.setenv(env, value)
    assert topics.client_settings() == {
        "bootstrap.servers": "kafka-1:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ingest",
        "sasl.password": "not-a-real-secret",
        "ssl.ca.location": "/etc/ca.pem",
    }
    assert topics.client_settings("explicit:1")["bootstrap.servers"] == "explicit:1"
    assert KafkaResource().settings() == topics.client_settings()


def test_physical_names_are_prefix_plus_name(monkeypatch):
    monkeypatch.delenv(topics.TOPIC_PREFIX_ENV, raising=False)
    assert topics.physical_topic("listen_events") == "listen_events"
    monkeypatch.setenv(topics.TOPIC_PREFIX_ENV, "staging-")
    assert topics.physical_topic("listen_events") == "staging-listen_events"
    assert topics.physical_topic("listen_events", "") == "listen_events"  # an explicit empty prefix wins
    assert topics.physical_topic("listen_events", "t1-") == "t1-listen_events"
    assert KafkaResource().topic("auth_events") == "staging-auth_events"
    assert KafkaResource(topic_prefix="").topic("auth_events") == "auth_events"
    # The generator's prefix is its own option: the environment does not change what it writes.
    assert GeneratorConfig().topic("auth_events") == "auth_events"
    assert GeneratorConfig(topic_prefix="g-").topic("auth_events") == "g-auth_events"


def test_generator_command_line_keeps_its_options():
    args = parse_args(["--users", "3", "--days", "2", "--bootstrap-servers", "b:1", "--topic-prefix", "p-"])
    assert (args.users, args.days, args.bootstrap_servers, args.topic_prefix, args.output) == (3, 2, "b:1", "p-", "kafka")
