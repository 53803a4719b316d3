"""Latency from Kafka to gold under the project's own `make dev` stack, as a user meets it.

`dagster dev` starts on 127.0.0.1 as `make dev` starts it: the project's instance configuration
(SQLite in a fresh Dagster home), the daemon with its sensors and run queue, every run a client of
the warm Spark Connect server (started here unless one already serves), raw on the Arrow path.
Its topics and warehouse are fresh. Batches of events for today are then produced one after
another, each once the previous one is in gold, and each batch's latency is the time from the
producer's flush to the moment gold/fact_stream holds the batch's listens, read with delta-rs.

Used by `python -m medallion_assets.bench --latency N`.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, RunsFilter

from medallion_assets.dev import dagster_home, spark_connect
from medallion_assets.dev.processes import HOST, port_answers, start, stop, wait_until
from medallion_assets.generator import GeneratorConfig, generate, write_kafka
from medallion_assets.paths import REPO_ROOT
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.tables import FACT_STREAM
from medallion_assets.topics import physical_topic

BATCH_EVENTS = 1_000
START_TIMEOUT_S = 300.0
BATCH_TIMEOUT_S = 600.0
POLL_S = 0.25
USERS = 20


@dataclass(frozen=True)
class Stack:
    """A running `dagster dev` of fresh topics and a fresh warehouse: its log and Dagster home."""

    warehouse: WarehouseResource
    log: Path
    home: Path

    def listens_in_gold(self, day: date) -> int:
        """gold/fact_stream's rows of the day, from its Delta log (delta-rs); 0 before it exists."""
        return self.warehouse.day_rows(FACT_STREAM, [day])[day] if self.warehouse.exists(FACT_STREAM) else 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def dev_stack(bootstrap: str, prefix: str) -> Iterator[Stack]:
    """`dagster dev` as `make dev` runs it, on topics of `prefix` and a warehouse of its own; stopped afterwards
    by its process group, with the Connect server if this started it."""
    server = spark_connect.Server(spark_connect.DEFAULT_HOME, spark_connect.DEFAULT_PORT)
    started_server = not server.serving()
    remote = spark_connect.up(server)
    work = Path(tempfile.mkdtemp(prefix="latency-", dir=REPO_ROOT / ".cache"))
    home, root, log, pid_file = work / "home", work / "warehouse", work / "dagster-dev.log", work / "dagster-dev.pid"
    dagster_home.write(home, "sqlite")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MEDALLION_WAREHOUSE": str(root),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MEDALLION_TOPIC_PREFIX": prefix,
        "SPARK_REMOTE": remote,
        "MEDALLION_RAW_ENGINE": "arrow",  # as `make dev` sets it beside its local Connect server
    }
    port = free_port()
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-h", HOST, "-p", str(port), "-w", str(REPO_ROOT / "workspace.yaml")]
    try:
        process = start(command, pid_file, log, env)
        wait_until(lambda: port_answers(port), process, log, "dagster dev", START_TIMEOUT_S)
        yield Stack(WarehouseResource(root=str(root)), log, home)
    finally:
        stop(pid_file)
        shutil.rmtree(work, ignore_errors=True)
        if started_server:
            spark_connect.down(server)


def produce_batch(settings: Mapping[str, str], prefix: str, day: date, seed: int, events: int) -> int:
    """Produce one batch of events for `day` and flush it; the listens among them."""
    config = GeneratorConfig(users=USERS, days=1, start_date=day, max_events=events, topic_prefix=prefix, seed=seed)
    batch = list(generate(config))
    write_kafka(batch, dict(settings), progress=False)
    return sum(1 for event in batch if event.topic == physical_topic("listen_events", prefix))


def wait_for_gold(stack: Stack, day: date, listens: int, timeout_s: float = BATCH_TIMEOUT_S) -> float:
    """Seconds until gold/fact_stream holds `listens` rows of the day; an error naming the log past the timeout."""
    started = time.monotonic()
    while stack.listens_in_gold(day) < listens:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"gold/fact_stream holds {stack.listens_in_gold(day)} of {listens} listens of {day} "
                               f"after {timeout_s:.0f} s; dagster dev's log: {stack.log}")
        time.sleep(POLL_S)
    return time.monotonic() - started


def runs_since(instance: DagsterInstance, flushed_at: float) -> list[dict[str, Any]]:
    """The runs created after the flush: job, and seconds from the flush to their creation, start and end."""
    records = instance.get_run_records(RunsFilter(created_after=datetime.fromtimestamp(flushed_at, timezone.utc)), ascending=True)
    since = lambda moment: round(moment - flushed_at, 2) if moment else None  # noqa: E731
    return [
        {
            "job": r.dagster_run.job_name,
            "created_s": since(r.create_timestamp.timestamp()),
            "started_s": since(r.start_time),
            "ended_s": since(r.end_time),
        }
        for r in records
    ]


def latency_figures(batches: int, bootstrap: str, settings: Mapping[str, str], prefix: str, events: int = BATCH_EVENTS) -> dict[str, Any]:
    """Produce `batches` batches one after another under a fresh dev stack; each one's seconds from flush to gold."""
    day = datetime.now(timezone.utc).date()
    seconds: list[float] = []
    runs: list[list[dict[str, Any]]] = []
    with dev_stack(bootstrap, prefix) as stack, DagsterInstance.from_config(str(stack.home)) as instance:
        expected = 0
        for n in range(batches):
            expected += produce_batch(settings, prefix, day, seed=1000 + n, events=events)
            flushed_at = time.time()
            seconds.append(round(wait_for_gold(stack, day, expected), 2))
            runs.append(runs_since(instance, flushed_at))
    return {
        "batches": seconds,
        "runs": runs,
        "batch_events": events,
        "first_batch_seconds": seconds[0],
        "p50_seconds": round(statistics.median(seconds), 2),
        "max_seconds": max(seconds),
    }
