"""The Kafka topics of the pipeline: logical names, physical names, client settings, creation.

The one home of these facts for the assets, the sensors, the generator, the local broker and the
benchmark. Needs neither pyspark nor a broker to import; the environment is read when a function
is called, never at import.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dagster import EnvVar

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

PAGE_VIEW_EVENTS = "page_view_events"
LISTEN_EVENTS = "listen_events"
AUTH_EVENTS = "auth_events"
STATUS_CHANGE_EVENTS = "status_change_events"
# Logical topic names; a topic's physical name is the prefix followed by this name.
TOPICS: tuple[str, ...] = (PAGE_VIEW_EVENTS, LISTEN_EVENTS, AUTH_EVENTS, STATUS_CHANGE_EVENTS)

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
TOPIC_PREFIX_ENV = "MEDALLION_TOPIC_PREFIX"

# Client settings read from the environment at run time; values are secrets or deployment facts.
CLIENT_SETTINGS_FROM_ENV = {
    "security.protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl.mechanism": "KAFKA_SASL_MECHANISM",
    "sasl.username": "KAFKA_SASL_USERNAME",
    "sasl.password": "KAFKA_SASL_PASSWORD",
    "ssl.ca.location": "KAFKA_SSL_CA_LOCATION",
}

TOPICS_READY_TIMEOUT_S = 30.0
# Replicas of every partition once a cluster has this many brokers; writes need all but one in sync.
MAX_REPLICATION = 3


class TopicCreationError(RuntimeError):
    """A topic could not be created, or did not get a leader for every partition in time."""


def bootstrap_servers(explicit: str | None = None) -> str:
    """The broker list: the explicit one, else $KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092."""
    return explicit or EnvVar(BOOTSTRAP_ENV).get_value(default=DEFAULT_BOOTSTRAP) or DEFAULT_BOOTSTRAP


def client_settings(bootstrap: str | None = None) -> dict[str, str]:
    """librdkafka settings: bootstrap plus any security settings present in the environment.

    The result may hold secrets: never log it.
    """
    settings = {"bootstrap.servers": bootstrap_servers(bootstrap)}
    for key, env in CLIENT_SETTINGS_FROM_ENV.items():
        value = EnvVar(env).get_value()
        if value:
            settings[key] = value
    return settings


def environment_lines(settings: Mapping[str, str]) -> list[str]:
    """KEY=value lines that make client_settings() give these settings (the inverse of client_settings)."""
    lines = [f"{BOOTSTRAP_ENV}={settings['bootstrap.servers']}"]
    return lines + [f"{env}={settings[key]}" for key, env in CLIENT_SETTINGS_FROM_ENV.items() if key in settings]


def jaas_config(mechanism: str, username: str, password: str) -> str:
    """The JAAS login line of a Java client or broker for a SASL mechanism (SCRAM-* or PLAIN)."""
    module = (
        "org.apache.kafka.common.security.scram.ScramLoginModule"
        if mechanism.startswith("SCRAM")
        else "org.apache.kafka.common.security.plain.PlainLoginModule"
    )
    return f'{module} required username="{username}" password="{password}";'


def topic_prefix(explicit: str | None = None) -> str:
    """Prefix of the physical topic names: the explicit one (even empty), else $MEDALLION_TOPIC_PREFIX."""
    if explicit is not None:
        return explicit
    return EnvVar(TOPIC_PREFIX_ENV).get_value() or ""


def physical_topic(name: str, prefix: str | None = None) -> str:
    """Physical name of a logical topic: prefix + name (prefix as in topic_prefix)."""
    return f"{topic_prefix(prefix)}{name}"


def replication_for(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) of topics on `brokers` brokers: (1, 1) alone, (3, 2) from three on."""
    factor = max(1, min(MAX_REPLICATION, brokers))
    return factor, max(1, factor - 1)


def create_topics(
    settings_or_bootstrap: Mapping[str, str] | str,
    names: Sequence[str],
    partitions: int = 3,
    timeout_s: float = TOPICS_READY_TIMEOUT_S,
) -> None:
    """Create the topics that do not exist, replicated as replication_for the live brokers, then wait for their leaders.

    settings_or_bootstrap is either librdkafka client settings (see client_settings) or a
    broker list. Existing topics are left as they are, whatever their partition count.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    names = [name for name in dict.fromkeys(names) if name]
    if not names:
        return
    settings = (
        {"bootstrap.servers": settings_or_bootstrap}
        if isinstance(settings_or_bootstrap, str)
        else dict(settings_or_bootstrap)
    )
    # Failed connection attempts are reported through the exceptions below, not the client's log.
    admin = AdminClient({**settings, "log_level": 3})
    metadata = admin.list_topics(timeout=timeout_s)
    existing = set(metadata.topics)
    missing = [name for name in names if name not in existing]
    if missing:
        factor, min_insync = replication_for(len(metadata.brokers))
        config = {"min.insync.replicas": str(min_insync)}
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=factor, config=config) for name in missing],
            operation_timeout=timeout_s,
            request_timeout=timeout_s,
        )
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicCreationError(f"Creating topic {name!r} failed: {error}") from error
    wait_for_leaders(admin, names, timeout_s)


def wait_for_leaders(admin: AdminClient, names: Sequence[str] | None = None, timeout_s: float = TOPICS_READY_TIMEOUT_S) -> None:
    """Wait until every partition of the topics (None: of every topic) has a leader; TopicCreationError if not in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(timeout=10)
        pending = [
            name
            for name in (metadata.topics if names is None else names)
            if name not in metadata.topics
            or metadata.topics[name].error is not None
            or any(p.leader < 0 for p in metadata.topics[name].partitions.values())
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TopicCreationError(f"Topics without a leader after {timeout_s:g} s: {pending}")
        time.sleep(0.2)
