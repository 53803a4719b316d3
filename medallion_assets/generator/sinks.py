"""Where events go: Kafka topics or one JSON-lines file per topic; both return the run's report."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from tqdm import tqdm

from medallion_assets.generator.model import Event
from medallion_assets.generator.report import GenerationReport

PROGRESS_STEP = 10_000
CONNECT_TIMEOUT_S = 15.0
MESSAGE_TIMEOUT_MS = 60_000
# Throughput settings; message.max.bytes leaves room for the >= 1 MiB defect messages.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger.ms": 50,
    "batch.size": 4 * 1024 * 1024,
    "batch.num.messages": 50_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1024 * 1024,
    "message.max.bytes": 10 * 1024 * 1024,
    "message.timeout.ms": MESSAGE_TIMEOUT_MS,
}


class KafkaWriteError(RuntimeError):
    """The broker was unreachable or refused events."""


def _tracked(events: Iterable[Event], report: GenerationReport, progress: bool, total: int | None) -> Iterator[Event]:
    """The events, counted into `report` and shown on a progress bar."""
    pending = 0
    with tqdm(total=total, disable=not progress, unit=" events", unit_scale=True, smoothing=0.1) as bar:
        for event in events:
            report.add(event)
            yield event
            pending += 1
            if pending == PROGRESS_STEP:
                bar.update(pending)
                pending = 0
        bar.update(pending)


@contextmanager
def _timed(report: GenerationReport | None) -> Iterator[GenerationReport]:
    """The report to fill (a new one when None), with the block's seconds added to its elapsed time."""
    report = report if report is not None else GenerationReport()
    started = time.perf_counter()
    try:
        yield report
    finally:
        report.elapsed_seconds += time.perf_counter() - started


def write_jsonl(
    events: Iterable[Event],
    out_dir: Path,
    report: GenerationReport | None = None,
    progress: bool = False,
    total: int | None = None,
) -> GenerationReport:
    """Append each event's value bytes as one line of `<out_dir>/<topic>.jsonl` (files truncated first)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with _timed(report) as report, ExitStack() as stack:
        files: dict[str, BinaryIO] = {}
        for event in _tracked(events, report, progress, total):
            handle = files.get(event.topic)
            if handle is None:
                handle = files[event.topic] = stack.enter_context((out_dir / f"{event.topic}.jsonl").open("wb"))
            handle.write(event.value)
            handle.write(b"\n")
    return report


class _DeliveryErrors:
    """Delivery callback that remembers failures."""

    def __init__(self) -> None:
        """No failures yet."""
        self.count = 0
        self.first: KafkaError | None = None

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        """Record a failed delivery."""
        if error is not None:
            self.count += 1
            self.first = self.first or error

    def raise_if_any(self) -> None:
        """Fail when any event was not delivered."""
        if self.count:
            raise KafkaWriteError(f"{self.count} events were not delivered; first error: {self.first}")


def _connect(producer_conf: dict[str, Any], failures: _DeliveryErrors) -> Producer:
    """A producer whose broker answered a metadata request within CONNECT_TIMEOUT_S."""
    producer = Producer({**PRODUCER_DEFAULTS, **producer_conf, "on_delivery": failures})
    try:
        producer.list_topics(timeout=CONNECT_TIMEOUT_S)
    except KafkaException as error:
        servers = producer_conf.get("bootstrap.servers")
        raise KafkaWriteError(f"Kafka at {servers} is unreachable ({CONNECT_TIMEOUT_S:.0f} s): {error}") from error
    return producer


def _produce(producer: Producer, event: Event) -> None:
    """Queue one event, waiting for room when the local queue is full."""
    while True:
        try:
            producer.produce(event.topic, event.value, event.key)
            return
        except BufferError:
            producer.poll(0.1)


def write_kafka(
    events: Iterable[Event],
    producer_conf: dict[str, Any],
    report: GenerationReport | None = None,
    progress: bool = True,
    total: int | None = None,
) -> GenerationReport:
    """Produce every event to its topic, then flush; raises KafkaWriteError if any was not delivered."""
    failures = _DeliveryErrors()
    with _timed(report) as report:
        producer = _connect(producer_conf, failures)
        for count, event in enumerate(_tracked(events, report, progress, total), 1):
            _produce(producer, event)
            if count % PROGRESS_STEP == 0:
                producer.poll(0)
                failures.raise_if_any()
        undelivered = producer.flush(MESSAGE_TIMEOUT_MS / 1000 + CONNECT_TIMEOUT_S)
        failures.raise_if_any()
        if undelivered:
            raise KafkaWriteError(f"{undelivered} events were still queued when the flush timed out")
    return report
