"""Kafka connection settings, shared by raw ingestion, Spark's Kafka source (the baseline), the sensor and the generator."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from dagster import ConfigurableResource, EnvVar
from pydantic import Field
from pyspark.sql import DataFrame, SparkSession

from medallion_assets.topics import DEFAULT_BOOTSTRAP, client_settings, jaas_config, physical_topic

RAW_ENGINE_ENV = "MEDALLION_RAW_ENGINE"
RawEngine = Literal["arrow", "spark"]
RAW_ENGINES: tuple[str, ...] = ("auto", "arrow", "spark")

# librdkafka reports every failed connection attempt; callers report the outcome once instead.
_QUIET = logging.getLogger("medallion_assets.kafka_client")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False

# A new librdkafka client holds its first request until its "sparse connect" interval has passed,
# half of reconnect.backoff.ms (default 100 ms): a watermark query or a small read took 54 ms where
# 2.5 ms would do, and a batch creates such a client for every topic in the sensor and in raw. At
# 10 ms the wait is librdkafka's floor of 11 ms; a broker that is down is still retried with
# exponential backoff up to reconnect.backoff.max.ms.
CONSUMER_SETTINGS = {"reconnect.backoff.ms": 10}


def consumer(settings: Mapping[str, object]) -> Consumer:
    """A librdkafka consumer of the settings, connecting without the default first-request delay, logging only
    to the caller (who reports the outcome once)."""
    return Consumer({**settings, **CONSUMER_SETTINGS}, logger=_QUIET)


# A batch read ends at offsets that already exist, yet the Java consumer's last fetch of each read
# task waits for more data up to fetch.max.wait.ms (Kafka's default 500 ms). That wait was most of
# a small read: 1,210 records took 1.2 s to read with the default and 0.19 s with 10 ms.
BATCH_FETCH_MAX_WAIT_MS = 10


# What one batch read holds in librdkafka's queue and asks of the broker per fetch: large, so a
# backlog streams in few round trips (569k records: 3.8 s with the defaults, 2.6 s with these).
BATCH_READ_SETTINGS = {
    "fetch.max.bytes": 52_428_800,
    "max.partition.fetch.bytes": 52_428_800,
    "queued.max.messages.kbytes": 1_048_576,
    "queued.min.messages": 1_000_000,
    "fetch.wait.max.ms": BATCH_FETCH_MAX_WAIT_MS,
}

# What a consumer that only waits for the next record asks per fetch: one small fetch, returned by the
# broker as soon as a record arrives (fetch.min.bytes 1), so a burst is not read just to be dropped.
WAIT_SETTINGS = {"max.partition.fetch.bytes": 65_536, "queued.min.messages": 1, "auto.offset.reset": "latest"}

# One Kafka record per row, as a batch read returns them.
RECORD_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("key", pa.binary()),
        ("value", pa.binary()),
    ]
)


def record_table(topic: str, messages: Sequence[Message]) -> pa.Table:
    """Records as an Arrow table of RECORD_SCHEMA."""
    millis = pa.array([m.timestamp()[1] for m in messages], pa.int64())
    return pa.table(
        [
            pa.repeat(pa.scalar(topic, pa.string()), len(messages)),
            pa.array([m.partition() for m in messages], pa.int32()),
            pa.array([m.offset() for m in messages], pa.int64()),
            millis.cast(pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("us", tz="UTC")),
            pa.array([m.key() for m in messages], pa.binary()),
            pa.array([m.value() for m in messages], pa.binary()),
        ],
        schema=RECORD_SCHEMA,
    )


class KafkaUnavailableError(RuntimeError):
    """The broker did not answer."""


def spark_kafka_options(settings: dict[str, str]) -> dict[str, str]:
    """The same settings as options of Spark's Kafka source (Java client names)."""
    options = {"kafka.bootstrap.servers": settings["bootstrap.servers"]}
    if "security.protocol" in settings:
        options["kafka.security.protocol"] = settings["security.protocol"]
    if "sasl.mechanism" in settings:
        options["kafka.sasl.mechanism"] = settings["sasl.mechanism"]
        options["kafka.sasl.jaas.config"] = jaas_config(
            settings["sasl.mechanism"], settings.get("sasl.username", ""), settings.get("sasl.password", "")
        )
    if "ssl.ca.location" in settings:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = settings["ssl.ca.location"]
    return options


def watermarks(
    settings: dict[str, str], topics: Sequence[str], timeout_s: float = 10.0
) -> dict[str, dict[int, tuple[int, int]]]:
    """(low, high) watermark per partition of each topic, with one client; a missing topic has none.

    Raises KafkaUnavailableError naming the broker when it does not answer within timeout_s.
    """
    client = consumer({**settings, "group.id": "medallion-offsets", "enable.auto.commit": False})
    try:
        metadata = client.list_topics(timeout=timeout_s)
        return {
            topic: {
                p: client.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
                for p in sorted(metadata.topics[topic].partitions)
            }
            if topic in metadata.topics
            else {}
            for topic in topics
        }
    except KafkaException as error:
        raise KafkaUnavailableError(
            f"Kafka broker {settings['bootstrap.servers']} did not answer within {timeout_s:g} s: {error}"
        ) from error
    finally:
        client.close()


class KafkaResource(ConfigurableResource):
    """Kafka broker, topic naming and the producers' conventions."""

    bootstrap_servers: str | None = Field(
        default=None, description=f"Broker list; env KAFKA_BOOTSTRAP_SERVERS, default {DEFAULT_BOOTSTRAP}."
    )
    topic_prefix: str | None = Field(
        default=None, description="Prefix of the physical topic names; env MEDALLION_TOPIC_PREFIX, default none."
    )
    duration_unit: Literal["seconds", "milliseconds"] = Field(
        default="seconds", description="Unit of listen durations on the wire (Eventsim: seconds)."
    )
    timeout_s: float = Field(default=10.0, description="Seconds to wait for the broker before failing.")
    records_per_read_task: int = Field(
        default=50_000,
        ge=1,
        description="Most records one Spark task of a batch read takes: a backlog is split so it spreads evenly over "
        "the cores (three partitions on two cores would leave one alone at the end).",
    )
    raw_engine: str | None = Field(
        default=None,
        description=f"Where raw ingestion runs; env {RAW_ENGINE_ENV}, default auto: `arrow` (librdkafka, DuckDB and "
        "delta-rs in the run's process) when Spark is local, `spark` (Spark's Kafka source and Delta writer on the "
        "executors) when Spark is a cluster or Spark Connect.",
    )

    def engine(self, spark_is_local: bool) -> RawEngine:
        """The engine raw ingestion runs on, given whether Spark runs in this process (local[*])."""
        chosen = self.raw_engine or EnvVar(RAW_ENGINE_ENV).get_value(default="auto") or "auto"
        if chosen not in RAW_ENGINES:
            raise ValueError(f"raw_engine (env {RAW_ENGINE_ENV})={chosen!r} is not a raw engine: use one of {', '.join(RAW_ENGINES)}")
        if chosen == "auto":
            return "arrow" if spark_is_local else "spark"
        return chosen  # type: ignore[return-value]

    def topic(self, name: str) -> str:
        """Physical topic name of a logical topic."""
        return physical_topic(name, self.topic_prefix)

    def settings(self) -> dict[str, str]:
        """librdkafka client settings (may hold secrets: never log them)."""
        return client_settings(self.bootstrap_servers)

    def topic_watermarks(
        self, names: Sequence[str], timeout_s: float | None = None
    ) -> dict[str, dict[int, tuple[int, int]]]:
        """(low, high) watermark per partition of each logical topic, asked with one client.

        Raises KafkaUnavailableError naming the broker when it does not answer within timeout_s
        (default: this resource's timeout_s). The one place the sensor asks the broker.
        """
        physical = {name: self.topic(name) for name in names}
        offsets = watermarks(self.settings(), list(physical.values()), timeout_s or self.timeout_s)
        return {name: offsets[topic] for name, topic in physical.items()}

    def wait_for_records(self, past: Mapping[str, Mapping[int, int]], wait_s: float) -> bool:
        """Whether a record at or past the offsets of `past` (logical topic -> partition -> offset) arrives within
        wait_s: one consumer fetches from there and answers at the first record or client error, so the caller
        looks again at once, instead of polling the watermarks."""
        assignments = [TopicPartition(self.topic(name), p, offset) for name, offsets in past.items() for p, offset in offsets.items()]
        if not assignments:
            return False
        client = consumer({**self.settings(), **WAIT_SETTINGS, "group.id": "medallion-offsets", "enable.auto.commit": False})
        try:
            client.assign(assignments)
            deadline = time.monotonic() + wait_s
            while (left := deadline - time.monotonic()) > 0:
                if client.poll(min(left, 1.0)) is not None:  # a record, or an error the next look names
                    return True
            return False
        finally:
            client.close()

    def end_offsets(self, name: str) -> dict[int, tuple[int, int]]:
        """(low, high) watermark per partition of a logical topic."""
        return self.topic_watermarks([name])[name]

    def read_records(self, name: str, ranges: Mapping[int, tuple[int, int]], chunk_rows: int = 100_000) -> Iterator[pa.Table]:
        """The records of a logical topic in [start, end) per partition, in offset order per partition, as
        Arrow tables (RECORD_SCHEMA) of at most `chunk_rows` rows, read with librdkafka (no JVM).

        Raises KafkaUnavailableError when the broker sends nothing for timeout_s while records remain,
        and KafkaException when a range is no longer on the broker (retention deleted it since).
        """
        topic = self.topic(name)
        remaining = {p: end for p, (start, end) in ranges.items() if end > start}
        settings = {**self.settings(), **BATCH_READ_SETTINGS, "group.id": "medallion-raw", "enable.auto.commit": False,
                    "auto.offset.reset": "error", "enable.partition.eof": True}
        client = consumer(settings)
        try:
            client.assign([TopicPartition(topic, p, ranges[p][0]) for p in remaining])
            batch: list[Message] = []
            position = {p: ranges[p][0] for p in remaining}  # the next offset each partition's range still holds
            heard = time.monotonic()
            while remaining:
                # at most what the ranges still hold: consume returns as soon as that many arrived, where a larger
                # count would wait out the timeout on every small batch
                left = sum(end - position[p] for p, end in remaining.items())
                messages = client.consume(num_messages=max(1, min(chunk_rows, 100_000, left)), timeout=1.0)
                if messages:
                    heard = time.monotonic()
                elif time.monotonic() - heard > self.timeout_s:
                    raise KafkaUnavailableError(
                        f"Kafka broker {settings['bootstrap.servers']} sent no records of {topic} for {self.timeout_s:g} s; "
                        f"still to read, per partition up to: {remaining}"
                    )
                for message in messages:
                    partition, offset, error = message.partition(), message.offset(), message.error()
                    end = remaining.get(partition)
                    if error is not None and error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(error)
                    if end is None:
                        continue  # that partition's range is read; what followed it belongs to the next batch
                    if error is None and offset < end:
                        batch.append(message)
                        position[partition] = offset + 1
                    # the range's last record, or the end of the partition past it (a range may end on an offset
                    # that holds no record, as a compacted topic's or a transaction marker's)
                    if offset >= (end - 1 if error is None else end):
                        del remaining[partition]
                        client.pause([TopicPartition(topic, partition)])
                if len(batch) >= chunk_rows:
                    yield record_table(topic, batch)
                    batch = []
            if batch:
                yield record_table(topic, batch)
        finally:
            client.close()

    def read_batch(
        self, session: SparkSession, name: str, starting: str = "earliest", ending: str = "latest", partitions: Sequence[int] = ()
    ) -> DataFrame:
        """The records of a logical topic from `starting` to `ending` (offsets JSON, or earliest/latest), read
        with Spark's Kafka batch source: one row per record, in read tasks of at most records_per_read_task
        records. Only the given partitions when there are some (their offsets alone in the JSON)."""
        topic = self.topic(name)
        subscription = ("assign", json.dumps({topic: list(partitions)})) if partitions else ("subscribe", topic)
        return (
            session.read.format("kafka")
            .options(**spark_kafka_options(self.settings()))
            .option(*subscription)
            .option("startingOffsets", starting)
            .option("endingOffsets", ending)
            .option("minPartitions", session.conf.get("spark.sql.shuffle.partitions"))
            .option("maxRecordsPerPartition", str(self.records_per_read_task))
            .option("kafka.fetch.max.wait.ms", str(BATCH_FETCH_MAX_WAIT_MS))
            .load()
        )
