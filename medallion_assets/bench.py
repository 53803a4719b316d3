"""Throughput benchmark: produce N events to fresh Kafka topics, then time raw, bronze, silver and gold.

Every layer is one in-process Dagster run, all in this process and so on one Spark session.
The same events then go through a plain-PySpark baseline (baseline.py) twice: in a process of
its own, cold as a plain job starts (its Spark start included), and on this process's warm
session; the pipeline's time with the JVM start is reported as a ratio to each. The pipeline then
runs again on the warm session into a fresh warehouse, for a ratio of warm to warm. With --history-days N,
one more batch is taken from Kafka to gold in the one run kafka_offsets_sensor would ask for
(raw, and below it the assets and days that run would select) on top of 1 day and of N days of
history, to show whether a batch's cost follows the batch or the history. Each step's Spark jobs
are counted. Raw is also run on its other engine (arrow or spark) from the same topics, and, in a
fresh process each, on the Arrow path over a batch of 7 days and of 60 days, for its peak memory.
With --latency N, N small batches go through the `make dev` stack one after another
(dev/latency.py), each timed from the producer's flush to gold.
The figures are printed as a table, then as JSON on one line starting with `BENCH_JSON `.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from dagster import (
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    EnvVar,
    EventLogEntry,
    ExecuteInProcessResult,
    JobDefinition,
)
from pyspark import SparkContext
from pyspark.sql import SparkSession

from medallion_assets.baseline import Baseline
from medallion_assets.definitions import defs
from medallion_assets.dev.kafka_local import DEFAULT_PORT, default_home, ensure_broker
from medallion_assets.dev.latency import BATCH_EVENTS as LATENCY_BATCH_EVENTS
from medallion_assets.dev.latency import latency_figures
from medallion_assets.generator import GeneratorConfig, generate, write_kafka
from medallion_assets.orchestration.jobs import PIPELINE
from medallion_assets.orchestration.sensors.kafka_offsets import batch_days, newest_days, topic_lags
from medallion_assets.orchestration.sensors.raw_to_gold import current_reference_assets, run_selection
from medallion_assets.paths import REPO_ROOT
from medallion_assets.resources.kafka import RAW_ENGINES, KafkaResource
from medallion_assets.resources.spark import SparkResource, spark_context
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runs import INFO_LOGS, days_run, medallion_job_with
from medallion_assets.tables import ARTIST_POPULARITY, DAILY_LOCATION_SUMMARY, DAILY_USER_SUMMARY, FACT_STREAM, WIDE_FACT
from medallion_assets.topics import BOOTSTRAP_ENV, TOPICS, client_settings, create_topics, physical_topic

LAYERS: tuple[str, ...] = ("raw", "bronze", "silver", "gold")
START_DATE = date(2025, 1, 1)
PARTITIONS = 3
# The generator averages about 64 events per user and day; sizing users with a slightly higher
# figure makes the first cohort of users span the whole window, so every day partition has data.
EVENTS_PER_USER_DAY = 70
ADMIN_TIMEOUT_S = 30.0


# History runs (--history-days): events per day of history, and the batch taken on top of it.
HISTORY_EVENTS_PER_DAY = 10_000
BATCH_EVENTS = 10_000
# Gold tables whose row counts the baseline must reproduce.
GOLD_TABLES = (FACT_STREAM, WIDE_FACT, DAILY_USER_SUMMARY, DAILY_LOCATION_SUMMARY, ARTIST_POPULARITY)
# Raw's peak memory (Arrow path) is measured on a batch of this many events spread over each span of days.
MEMORY_EVENTS = 1_000_000
MEMORY_SPANS = (7, 60)
# The job group of what a run does outside its steps (resource setup, between steps).
OUTSIDE_STEPS = "(outside steps)"


@dataclass
class LayerFigures:
    """Wall time and rows written of one layer's run, with rows per asset, each step's duration and Spark jobs.

    spark_jobs and step_spark_jobs are None without a SparkContext (Spark Connect).
    """

    seconds: float
    events_per_s: int
    rows: int
    asset_rows: dict[str, int]
    steps: dict[str, float]
    spark_jobs: int | None = None
    step_spark_jobs: dict[str, int] | None = None

    def figures(self) -> dict[str, Any]:
        """JSON-ready, the job counts omitted when they were not counted."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m medallion_assets.bench", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to produce (default 1000000)")
    parser.add_argument("--users", type=int, help=f"listeners (default: events / (days * {EVENTS_PER_USER_DAY}))")
    parser.add_argument("--days", type=int, default=7, help=f"days of events from {START_DATE} (default 7)")
    parser.add_argument(
        "--history-days", type=int, metavar="N",
        help="also time one more batch from Kafka to gold on top of 1 day and of N days of history (N >= 2)",
    )
    parser.add_argument(
        "--history-events-per-day", type=int, default=HISTORY_EVENTS_PER_DAY,
        help=f"events per day of history (default {HISTORY_EVENTS_PER_DAY})",
    )
    parser.add_argument(
        "--batch-events", type=int, default=BATCH_EVENTS, help=f"events of the batch on top of history (default {BATCH_EVENTS})"
    )
    parser.add_argument(
        "--raw-engine", choices=RAW_ENGINES, default="auto",
        help="the pipeline's raw engine (default auto: arrow on local Spark, spark on a cluster or Spark Connect); "
        "the other one is timed on raw alone",
    )
    parser.add_argument(
        "--memory-events", type=int, default=MEMORY_EVENTS,
        help=f"events of each batch whose raw peak memory is measured over {' and '.join(map(str, MEMORY_SPANS))} days "
        f"(default {MEMORY_EVENTS}; 0 skips it)",
    )
    parser.add_argument(
        "--latency", type=int, metavar="N",
        help=f"also produce N batches of {LATENCY_BATCH_EVENTS} events, one after another, under a fresh `make dev` stack, "
        "and time each from the producer's flush to gold/fact_stream",
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouses and the topics")
    args = parser.parse_args(argv)
    if args.events < 1 or args.days < 1 or (args.users is not None and args.users < 1):
        parser.error("--events, --users and --days must be at least 1")
    if args.history_days is not None and args.history_days < 2:
        parser.error("--history-days must be at least 2 (it is compared with 1 day of history)")
    if args.memory_events < 0:
        parser.error("--memory-events must be at least 0")
    if args.latency is not None and args.latency < 1:
        parser.error("--latency must be at least 1")
    if args.history_events_per_day < 1 or args.batch_events < 1:
        parser.error("--history-events-per-day and --batch-events must be at least 1")
    return args


def default_users(events: int, days: int) -> int:
    """Listeners whose events over the window add up to about `events`."""
    return max(1, math.ceil(events / (days * EVENTS_PER_USER_DAY)))


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    """The result of `action()` and its wall-clock seconds."""
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def admin_client(settings: dict[str, str]) -> AdminClient:
    """An admin client that logs errors only; keep it referenced until its futures are done."""
    return AdminClient({**settings, "log_level": 3})


def delete_topics(settings: dict[str, str], names: Sequence[str]) -> None:
    """Delete the benchmark's topics."""
    admin = admin_client(settings)
    futures = admin.delete_topics(list(names), operation_timeout=ADMIN_TIMEOUT_S)
    for future in futures.values():
        future.result()


# -- Spark jobs per step ---------------------------------------------------------------------------


@dataclass
class JobGroups:
    """Counts the Spark jobs of named parts of the work, by job group and the status tracker.

    Job groups are thread-local; Dagster's in-process executor runs every step in the calling
    thread, so a group set when a step starts covers that step's jobs. Counts are read as soon
    as a part ends: the status tracker keeps only the latest jobs (spark.ui.retainedJobs).
    """

    context: SparkContext
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")
    counts: dict[str, int] = field(default_factory=dict)

    def enter(self, part: str) -> None:
        """Count the jobs launched from now on under `part`."""
        self.context.setJobGroup(f"{self.prefix}/{part}", f"bench: {part}")

    def close(self, part: str) -> None:
        """Record the jobs `part` launched."""
        self.counts[part] = len(self.context.statusTracker().getJobIdsForGroup(f"{self.prefix}/{part}"))

    def clear(self) -> None:
        """Launch later jobs without a group."""
        self.context.setLocalProperty("spark.jobGroup.id", None)
        self.context.setLocalProperty("spark.job.description", None)

    def on_event(self, entry: EventLogEntry) -> None:
        """Dagster event listener: one group per step, OUTSIDE_STEPS between steps."""
        event = entry.dagster_event
        if event is None or event.step_key is None:
            return
        if event.event_type == DagsterEventType.STEP_START:
            self.enter(event.step_key)
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            self.close(event.step_key)
            self.enter(OUTSIDE_STEPS)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Count the jobs of a block of code under `name`."""
        self.enter(name)
        try:
            yield
        finally:
            self.close(name)
            self.clear()


@dataclass
class Launched:
    """A timed in-process run, with its Spark jobs per step (None without a SparkContext)."""

    result: ExecuteInProcessResult
    seconds: float
    step_jobs: dict[str, int] | None

    @property
    def spark_jobs(self) -> int | None:
        """All Spark jobs of the run."""
        return sum(self.step_jobs.values()) if self.step_jobs is not None else None


def launch(
    first: date,
    last: date,
    selection: AssetSelection,
    job: JobDefinition,
    instance: DagsterInstance,
    context: SparkContext | None,
) -> Launched:
    """One timed run of `job` over first..last, with the selection and tags runs.materialize_days gives it.

    The run id is chosen here so that a listener counting each step's Spark jobs is registered
    before the run starts.
    """
    run = days_run(first, last, selection)
    run_id = str(uuid.uuid4())
    groups = JobGroups(context) if context is not None else None
    if groups is not None:
        instance.add_event_listener(run_id, groups.on_event)
        groups.enter(OUTSIDE_STEPS)
    started = time.perf_counter()
    try:
        result = job.execute_in_process(
            run_config=INFO_LOGS, instance=instance, asset_selection=run.asset_selection, tags=run.tags, run_id=run_id
        )
    finally:
        seconds = time.perf_counter() - started
        if groups is not None:
            groups.close(OUTSIDE_STEPS)
            groups.clear()
    step_jobs = None
    if groups is not None:
        step_jobs = {k: n for k, n in groups.counts.items() if k != OUTSIDE_STEPS or n}
    return Launched(result, seconds, step_jobs)


def run_steps(result: ExecuteInProcessResult) -> dict[str, float]:
    """Seconds of each step of a run that succeeded, as Dagster timed them."""
    return {
        event.step_key: event.event_specific_data.duration_ms / 1000
        for event in result.all_events
        if event.is_step_success and event.step_key is not None
    }


def layer_figures(launched: Launched, events: int) -> LayerFigures:
    """Rows written, step durations and Spark jobs of one layer's run.

    A run over several days records one materialization per day partition, each carrying the
    whole run's `rows_written`, so the count is taken once per asset.
    """
    asset_rows: dict[str, int] = {}
    for event in launched.result.all_events:
        if event.is_step_materialization:
            count = event.step_materialization_data.materialization.metadata.get("rows_written")
            asset_rows[event.asset_key.to_user_string()] = int(count.value) if count is not None else 0
    steps = {step: round(seconds, 2) for step, seconds in run_steps(launched.result).items()}
    seconds = round(launched.seconds, 2)
    return LayerFigures(
        seconds,
        round(events / launched.seconds),
        sum(asset_rows.values()),
        asset_rows,
        steps,
        launched.spark_jobs,
        launched.step_jobs,
    )


# -- memory ----------------------------------------------------------------------------------------


def descendant_pids(root: int) -> list[int]:
    """Every process below `root` in the process tree."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, pending = [], [root]
    while pending:
        kids = children.get(pending.pop(), [])
        found += kids
        pending += kids
    return found


def status_field(pid: int, key: str) -> str | None:
    """One field of /proc/<pid>/status, or None when the process or field is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{key}:")), None)


def status_kib(pid: int, key: str) -> int | None:
    """A kB figure of /proc/<pid>/status (e.g. VmHWM), or None."""
    value = status_field(pid, key)
    return int(value.split()[0]) if value else None


def spark_jvm_peak_mib() -> float | None:
    """Peak RSS (VmHWM) of the Spark driver JVM started by this process; None with Spark Connect."""
    jvms = [pid for pid in descendant_pids(os.getpid()) if status_field(pid, "Name") == "java"]
    peaks = [kib for kib in (status_kib(pid, "VmHWM") for pid in jvms) if kib is not None]
    return round(max(peaks) / 1024, 1) if peaks else None


def python_peak_mib() -> float:
    """Peak RSS of this Python process since start or since the last reset_python_peak()."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_python_peak() -> None:
    """Restart this process's peak-RSS count (Linux clear_refs 5), so the pipeline is measured apart from produce."""
    Path("/proc/self/clear_refs").write_text("5")



def produce(config: GeneratorConfig, settings: dict[str, str]) -> dict[str, Any]:
    """Generate and produce the events; their count, seconds and rate."""
    report, seconds = timed(lambda: write_kafka(generate(config), settings, progress=False))
    return {
        "events": report.total_events,
        "events_per_topic": dict(sorted(report.events_per_topic.items())),
        "produce_seconds": round(seconds, 2),
        "produce_events_per_s": round(report.total_events / seconds),
    }


def run_layers(
    first: date, last: date, job: JobDefinition, events: int, context: SparkContext | None
) -> dict[str, LayerFigures]:
    """Materialize raw, bronze, silver and gold, one timed in-process run each, in one Spark session."""
    with DagsterInstance.ephemeral() as instance:  # disposed here, not by whichever thread collects it
        return {
            layer: layer_figures(launch(first, last, AssetSelection.groups(layer), job, instance, context), events)
            for layer in LAYERS
        }


# -- plain-PySpark baseline -----------------------------------------------------------------------


def gold_rows_match(rows: dict[str, int], warehouse: WarehouseResource) -> bool:
    """Whether a baseline's gold tables (rows per table path) hold as many rows as the pipeline's."""
    return all(rows[t.path] == warehouse.total_rows(t) for t in GOLD_TABLES)


def run_baseline(
    spark: SparkSession,
    kafka: KafkaResource,
    warehouse: WarehouseResource,
    root: Path,
    days: Sequence[date],
    context: SparkContext | None,
) -> dict[str, Any]:
    """The same events to the same tables with plain PySpark on the warm session, timed; its rows checked
    against the pipeline's gold.

    It runs after the pipeline, on the session the pipeline started: the JVM is up, the jars are
    loaded and the code is warm, so baseline_warm_seconds holds no JVM start. It is compared with
    the pipeline run again on that session (pipeline_warm_ratio), like for like.
    """
    baseline = Baseline(spark, kafka, root, warehouse.songs_uri, warehouse.state_codes_uri)
    groups = JobGroups(context) if context is not None else None
    if groups is not None:
        with groups.part("baseline"):
            layers, seconds = timed(lambda: baseline.run(days))
    else:
        layers, seconds = timed(lambda: baseline.run(days))
    rows = baseline.table_rows()
    return {
        "baseline_warm_seconds": round(seconds, 2),
        "baseline_warm_layers": {layer: {"seconds": s} for layer, s in layers.items()},
        **({"baseline_spark_jobs": groups.counts["baseline"]} if groups is not None else {}),
        "baseline_rows": rows,
        "baseline_warm_gold_rows_match": gold_rows_match(rows, warehouse),
    }


def run_cold_baseline(
    bootstrap: str, prefix: str, warehouse: WarehouseResource, root: Path, days: Sequence[date]
) -> dict[str, Any]:
    """The baseline as its user runs it: in a process of its own, timed from its Spark start, as the
    pipeline's first run is (baseline_ratio = pipeline_with_jvm_start_seconds / baseline_seconds); its
    gold rows checked against the pipeline's."""
    command = [
        sys.executable, "-m", "medallion_assets.baseline", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
        "--root", str(root), "--first-day", days[0].isoformat(), "--days", str(len(days)),
        "--songs-csv", warehouse.songs_uri, "--state-codes-csv", warehouse.state_codes_uri,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"the baseline in its own process failed ({done.returncode}):\n{done.stderr[-4000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("BASELINE_JSON "))
    cold = json.loads(line.removeprefix("BASELINE_JSON "))
    return {
        "baseline_seconds": round(cold["spark_start_seconds"] + cold["seconds"], 2),
        "baseline_spark_start_seconds": cold["spark_start_seconds"],
        "baseline_layers": {layer: {"seconds": s} for layer, s in cold["layers"].items()},
        "baseline_gold_rows_match": gold_rows_match(cold["rows"], warehouse),
    }


def run_warm_pipeline(
    kafka: KafkaResource, root: Path, first: date, last: date, events: int, context: SparkContext | None
) -> dict[str, Any]:
    """The pipeline again on the warm session, from the same topics into a fresh warehouse: like for like
    with the warm baseline (pipeline_warm_ratio = pipeline_warm_seconds / baseline_warm_seconds)."""
    store = WarehouseResource(root=str(root))
    try:
        layers = run_layers(first, last, medallion_job_with({"kafka": kafka, "warehouse": store}), events, context)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "pipeline_warm_seconds": round(sum(layer.seconds for layer in layers.values()), 2),
        "pipeline_warm_layers": {
            name: {"seconds": layer.seconds, "events_per_s": layer.events_per_s} for name, layer in layers.items()
        },
    }


# -- one batch on top of history --------------------------------------------------------------------


def event_dates(result: ExecuteInProcessResult) -> list[date]:
    """The days the records of a raw run fall on (the raw assets' `event_dates` metadata)."""
    days: set[date] = set()
    for event in result.all_events:
        if event.is_step_materialization:
            value = event.step_materialization_data.materialization.metadata.get("event_dates")
            days.update(date.fromisoformat(d) for d in (value.value if value is not None else []))
    return sorted(days)


def sensor_selection(instance: DagsterInstance) -> AssetSelection:
    """What the sensors' run of a batch selects below raw: every asset but the reference dimensions
    built today from unchanged files."""
    repository = defs.get_repository_def()
    current = current_reference_assets(instance, repository, datetime.now(timezone.utc).date())
    keys = run_selection(repository, current)
    return AssetSelection.assets(*keys) if keys is not None else PIPELINE - AssetSelection.groups("raw")


@dataclass
class History:
    """A warehouse fed by its own topics, holding `days` days of history before batch_day, and one batch to take."""

    days: int
    batch_day: date
    prefix: str
    bootstrap: str
    settings: dict[str, str]
    context: SparkContext | None
    figures: dict[str, Any] = field(default_factory=dict)
    job: JobDefinition | None = None
    instance: DagsterInstance | None = None
    created: bool = False

    @property
    def topics(self) -> list[str]:
        """The physical topics of this history."""
        return [physical_topic(topic, self.prefix) for topic in TOPICS]

    @property
    def warehouse(self) -> Path:
        """The Delta root of this history."""
        return REPO_ROOT / ".cache" / "bench" / self.prefix

    def prepare(self, events_per_day: int, batch_events: int) -> None:
        """Produce the history and build it to gold (one run), then produce the batch (not ingested yet)."""
        start = self.batch_day - timedelta(days=self.days)
        history_events = events_per_day * self.days
        history = GeneratorConfig(
            users=default_users(history_events, self.days), days=self.days, start_date=start,
            max_events=history_events, topic_prefix=self.prefix,
        )
        batch = GeneratorConfig(
            users=default_users(batch_events, 1), days=1, start_date=self.batch_day, max_events=batch_events,
            topic_prefix=self.prefix, seed=history.seed + 1,
        )
        self.job = medallion_job_with({
            "kafka": KafkaResource(bootstrap_servers=self.bootstrap, topic_prefix=self.prefix),
            "warehouse": WarehouseResource(root=str(self.warehouse)),
        })
        self.instance = DagsterInstance.ephemeral()
        create_topics(self.settings, self.topics, PARTITIONS, timeout_s=ADMIN_TIMEOUT_S)
        self.created = True
        produced = produce(history, self.settings)
        built = launch(start, self.batch_day - timedelta(days=1), PIPELINE, self.job, self.instance, self.context)
        self.figures.update(
            history_days=self.days, history_events=produced["events"], history_build_seconds=round(built.seconds, 2),
            batch_events=produce(batch, self.settings)["events"],
        )

    def take_batch(self) -> None:
        """Time the batch as kafka_offsets_sensor has it taken: one run that ingests it and carries the days of
        its newest records from raw to gold (the days are found before the run, as the sensor finds them)."""
        kafka = KafkaResource(bootstrap_servers=self.bootstrap, topic_prefix=self.prefix)
        store = WarehouseResource(root=str(self.warehouse))
        span = batch_days(newest_days(kafka, topic_lags(kafka, store, ADMIN_TIMEOUT_S))) or (self.batch_day, self.batch_day)
        selection = AssetSelection.groups("raw") | sensor_selection(self.instance)
        run = launch(span[0], span[1], selection, self.job, self.instance, self.context)
        steps = run_steps(run.result)
        raw_steps = {step for step in steps if step.startswith("raw__")}
        raw_seconds = sum(steps[step] for step in raw_steps)
        self.figures.update(
            batch_days=[d.isoformat() for d in event_dates(run.result)],
            raw_seconds=round(raw_seconds, 2),
            downstream_seconds=round(run.seconds - raw_seconds, 2),
            batch_seconds=round(run.seconds, 2),
        )
        if run.step_jobs is not None:
            raw_jobs = sum(n for step, n in run.step_jobs.items() if step in raw_steps)
            self.figures.update(raw_spark_jobs=raw_jobs, downstream_spark_jobs=run.spark_jobs - raw_jobs)

    def clean_up(self) -> None:
        """Remove the warehouse and the topics (if they were created)."""
        shutil.rmtree(self.warehouse, ignore_errors=True)
        if self.created:
            delete_topics(self.settings, self.topics)


def history_figures(
    args: argparse.Namespace, prefix: str, bootstrap: str, settings: dict[str, str], context: SparkContext | None
) -> dict[str, Any]:
    """The same batch timed on 1 day and on --history-days days of history, in this invocation.

    Both histories are built first, then the two batches are timed one right after the other,
    so that both meet the same machine load.
    """
    n = args.history_days
    batch_day = START_DATE + timedelta(days=n)  # the same day for both, so both take the same batch
    one, many = (History(days, batch_day, f"{prefix}h{days}-", bootstrap, settings, context) for days in (1, n))
    try:
        for history in (one, many):
            history.prepare(args.history_events_per_day, args.batch_events)
        for history in (one, many):
            history.take_batch()
    finally:
        if not args.keep:
            for history in (one, many):
                history.clean_up()
    if args.keep:
        for history in (one, many):
            history.figures.update(warehouse=str(history.warehouse), topic_prefix=history.prefix)
    return {
        "days": n,
        "events_per_day": args.history_events_per_day,
        "batch_day": batch_day.isoformat(),
        "batch_seconds_1_day": one.figures["batch_seconds"],
        "batch_seconds_n_days": many.figures["batch_seconds"],
        "ratio": round(many.figures["batch_seconds"] / one.figures["batch_seconds"], 2),
        "runs": {"1_day": one.figures, "n_days": many.figures},
    }


def stop_session(spark: SparkSession | None) -> None:
    """Stop this process's Spark session, if one runs."""
    session = SparkSession.getActiveSession() or spark
    if session is not None:
        session.stop()


def latency_on_topics(batches: int, prefix: str, bootstrap: str, settings: dict[str, str]) -> dict[str, Any]:
    """dev/latency.py's figures on topics of their own, deleted afterwards."""
    topics = [physical_topic(topic, prefix) for topic in TOPICS]
    create_topics(settings, topics, PARTITIONS, timeout_s=ADMIN_TIMEOUT_S)
    try:
        return latency_figures(batches, bootstrap, settings, prefix)
    finally:
        delete_topics(settings, topics)


# -- raw on either engine -----------------------------------------------------------------------------


def other_engine(engine: str) -> str:
    """The raw engine the pipeline did not run on."""
    return "spark" if engine == "arrow" else "arrow"


def raw_run(bootstrap: str, prefix: str, engine: str, root: Path, first: date, last: date, context: SparkContext | None) -> Launched:
    """Raw alone on `engine`, from the topics of `prefix` into the warehouse `root`, with an instance of its own."""
    kafka = KafkaResource(bootstrap_servers=bootstrap, topic_prefix=prefix, raw_engine=engine)
    job = medallion_job_with({"kafka": kafka, "warehouse": WarehouseResource(root=str(root))})
    with DagsterInstance.ephemeral() as instance:  # disposed here, not by whichever thread collects it
        launched = launch(first, last, AssetSelection.groups("raw"), job, instance, context)
    if not launched.result.success:
        raise RuntimeError(f"raw ingestion on {engine} failed")
    return launched


def raw_on_engine(
    bootstrap: str, prefix: str, engine: str, root: Path, first: date, last: date, events: int, context: SparkContext | None
) -> dict[str, Any]:
    """Raw alone on `engine`, from the topics into a fresh warehouse: seconds, events/s, Spark jobs."""
    try:
        figures = layer_figures(raw_run(bootstrap, prefix, engine, root, first, last, context), events)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"seconds": figures.seconds, "events_per_s": figures.events_per_s,
            **({"spark_jobs": figures.spark_jobs} if figures.spark_jobs is not None else {})}


def raw_peak_rss(bootstrap: str, prefix: str, root: str) -> float:
    """Peak RSS (MiB) of this process after ingesting the topics into raw on the Arrow path alone (run
    in a fresh process, so the figure is raw's and nothing else's)."""
    raw_run(bootstrap, prefix, "arrow", Path(root), START_DATE, START_DATE, None)
    return python_peak_mib()


def raw_memory_figures(events: int, prefix: str, bootstrap: str, settings: dict[str, str]) -> dict[str, Any]:
    """Raw's peak RSS on the Arrow path over a batch of `events` spanning each of MEMORY_SPANS days, each
    in a fresh process: whether its memory follows the chunk or the days a batch spans."""
    peaks: dict[str, Any] = {}
    spawn = multiprocessing.get_context("spawn")
    for days in MEMORY_SPANS:
        span = f"{prefix}m{days}-"
        topics = [physical_topic(topic, span) for topic in TOPICS]
        root = REPO_ROOT / ".cache" / "bench" / span
        create_topics(settings, topics, PARTITIONS, timeout_s=ADMIN_TIMEOUT_S)
        try:
            config = GeneratorConfig(
                users=default_users(events, days), days=days, start_date=START_DATE, max_events=events, topic_prefix=span
            )
            produced = produce(config, settings)["events"]
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as fresh:  # its worker ends when asked, not killed
                peaks[f"days_{days}"] = fresh.submit(raw_peak_rss, bootstrap, span, str(root)).result()
        finally:
            shutil.rmtree(root, ignore_errors=True)
            delete_topics(settings, topics)
    first, last = (peaks[f"days_{d}"] for d in (MEMORY_SPANS[0], MEMORY_SPANS[-1]))
    return {**peaks, "events": produced, "ratio": round(last / first, 2)}


# -- report ----------------------------------------------------------------------------------------


def summary(
    setup: dict[str, Any], produced: dict[str, Any], spark_start: float, layers: dict[str, LayerFigures]
) -> dict[str, Any]:
    """Every figure of the pipeline run, JSON-ready."""
    pipeline = sum(layer.seconds for layer in layers.values())
    events = produced["events"]
    return {
        **setup,
        **produced,
        "spark_start_seconds": round(spark_start, 2),
        "layers": {name: layer.figures() for name, layer in layers.items()},
        "pipeline_seconds": round(pipeline, 2),
        "pipeline_events_per_s": round(events / pipeline),
        "pipeline_with_jvm_start_seconds": round(pipeline + spark_start, 2),
        "pipeline_with_jvm_start_events_per_s": round(events / (pipeline + spark_start)),
    }


def print_table(figures: dict[str, Any]) -> None:
    """The figures as a readable table, slowest steps per layer included."""
    counted = "spark_jobs" in next(iter(figures["layers"].values()))
    jobs = (lambda n: f"{n:>8,}") if counted else (lambda n: "")
    print(f"\nmedallion_assets benchmark: {figures['events']:,} events, {figures['users']:,} users, "
          f"{figures['days']} days from {figures['start_date']}, topics {figures['topic_prefix']}*")
    print(f"  {'stage':<30}{'seconds':>10}{'rows':>12}{'events/s':>12}" + (f"{'jobs':>8}" if counted else ""))
    print(f"  {'produce (not in pipeline)':<30}{figures['produce_seconds']:>10.2f}{figures['events']:>12,}"
          f"{figures['produce_events_per_s']:>12,}")
    print(f"  {'spark session start':<30}{figures['spark_start_seconds']:>10.2f}")
    for name, layer in figures["layers"].items():
        print(f"  {name:<30}{layer['seconds']:>10.2f}{layer['rows']:>12,}{layer['events_per_s']:>12,}"
              + (jobs(layer["spark_jobs"]) if counted else ""))
    print(f"  {'pipeline (raw..gold)':<30}{figures['pipeline_seconds']:>10.2f}{'':>12}"
          f"{figures['pipeline_events_per_s']:>12,}")
    print(f"  {'pipeline + spark start':<30}{figures['pipeline_with_jvm_start_seconds']:>10.2f}{'':>12}"
          f"{figures['pipeline_with_jvm_start_events_per_s']:>12,}")
    cold = figures["baseline_seconds"]
    print(f"  {'plain PySpark (own process)':<30}{cold:>10.2f}{'':>12}{round(figures['events'] / cold):>12,}")
    print(f"    spark start {figures['baseline_spark_start_seconds']:.1f}, "
          + ", ".join(f"{name} {layer['seconds']:.1f}" for name, layer in figures["baseline_layers"].items())
          + f"; gold rows equal the pipeline's: {'yes' if figures['baseline_gold_rows_match'] else 'NO'}")
    base = figures["baseline_warm_seconds"]
    print(f"  {'plain PySpark (warm session)':<30}{base:>10.2f}{'':>12}{round(figures['events'] / base):>12,}"
          + (jobs(figures["baseline_spark_jobs"]) if counted else ""))
    print("    " + ", ".join(f"{name} {layer['seconds']:.1f}" for name, layer in figures["baseline_warm_layers"].items())
          + f"; gold rows equal the pipeline's: {'yes' if figures['baseline_warm_gold_rows_match'] else 'NO'}")
    warm = figures["pipeline_warm_seconds"]
    print(f"  {'pipeline again (warm session)':<30}{warm:>10.2f}{'':>12}{round(figures['events'] / warm):>12,}")
    print("    " + ", ".join(f"{name} {layer['seconds']:.1f}" for name, layer in figures["pipeline_warm_layers"].items())
          + f"; raw {figures['pipeline_warm_layers']['raw']['events_per_s']:,} events/s")
    print(f"  baseline ratio (pipeline + spark start / plain PySpark in its own process, spark start included): "
          f"{figures['baseline_ratio']:.2f}")
    print(f"  warm ratio (pipeline again / plain PySpark, both on the warm session): {figures['pipeline_warm_ratio']:.2f}")
    print(f"  warm-session ratio (pipeline + spark start / plain PySpark on the warm session): {figures['baseline_warm_session_ratio']:.2f}")
    jvm = figures["spark_jvm_peak_rss_mib"]
    print(f"  peak RSS: Spark driver JVM {jvm if jvm is not None else 'n/a'} MiB; Python "
          f"{figures['python_peak_rss_mib_produce']} MiB while producing, "
          f"{figures['python_peak_rss_mib_pipeline']} MiB during the pipeline")
    print("  step seconds (Dagster)" + (" and Spark jobs:" if counted else ":"))
    for name, layer in figures["layers"].items():
        steps = sorted(layer["steps"].items(), key=lambda item: -item[1])
        step_jobs = layer.get("step_spark_jobs", {})
        print(f"    {name:<8}" + ", ".join(
            f"{step} {seconds:.1f}" + (f" ({step_jobs.get(step, 0)} jobs)" if counted else "") for step, seconds in steps
        ) + (f"; {step_jobs[OUTSIDE_STEPS]} jobs outside steps" if step_jobs.get(OUTSIDE_STEPS) else ""))
    engines = figures["layers"]["raw"].get("engines", {})
    if engines:
        print("  raw by engine (same topics): " + ", ".join(
            f"{name} {e['events_per_s']:,} events/s in {e['seconds']:.2f} s"
            + (f" ({e['spark_jobs']} Spark jobs)" if "spark_jobs" in e else "") for name, e in engines.items()
        ) + f"; the pipeline ran on {figures['raw_engine']}")
    memory = figures.get("raw_peak_rss_mib")
    if memory:
        print(f"  raw peak RSS on the Arrow path, {memory['events']:,} events in a process of its own: "
              + ", ".join(f"{key.removeprefix('days_')} days {value} MiB" for key, value in memory.items() if key.startswith("days_"))
              + f" (ratio {memory['ratio']:.2f})")
    history = figures.get("history")
    if history:
        one, many = history["runs"]["1_day"], history["runs"]["n_days"]
        print(f"  one batch on top of history ({history['events_per_day']:,} events per day of history, "
              f"batch on {history['batch_day']}; one run ingests it and carries its days to gold: its raw steps + the rest):")
        for label, run in ((f"{'1 day':>8}", one), (f"{history['days']:>2} days", many)):
            print(f"    {label}: {run['batch_events']:,} events in {run['batch_seconds']:.2f} s "
                  f"(raw {run['raw_seconds']:.2f} + downstream {run['downstream_seconds']:.2f})"
                  + (f", {run['raw_spark_jobs'] + run['downstream_spark_jobs']} Spark jobs" if "raw_spark_jobs" in run else "")
                  + f"; history of {run['history_events']:,} events built in {run['history_build_seconds']:.2f} s")
        print(f"    ratio n days / 1 day: {history['ratio']:.2f}; the batch on {history['days']} days costs "
              f"{history['batch_share_of_pipeline']:.0%} of the pipeline's {figures['pipeline_seconds']:.2f} s"
              + (f", {many['downstream_spark_jobs']} Spark jobs downstream of raw" if "downstream_spark_jobs" in many else ""))
    latency = figures.get("latency")
    if latency:
        print(f"  latency under `make dev`, {latency['batch_events']:,} events per batch, producer flush to gold/fact_stream: "
              f"first {latency['first_batch_seconds']:.1f} s, p50 {latency['p50_seconds']:.1f} s, max {latency['max_seconds']:.1f} s "
              f"(batches: {', '.join(f'{s:.1f}' for s in latency['batches'])})")
    if figures["warehouse"]:
        print(f"  kept: warehouse {figures['warehouse']}, baseline {figures['baseline_root']} "
              f"and topics {figures['topic_prefix']}*")


def main(argv: Sequence[str] | None = None) -> None:
    """Produce the events, run the layers and the baseline (and history), print the figures, clean up unless --keep."""
    args = parse_args(argv)
    prefix = f"bench-{int(time.time())}-"
    topics = [physical_topic(topic, prefix) for topic in TOPICS]
    bootstrap = EnvVar(BOOTSTRAP_ENV).get_value() or ensure_broker(default_home(), DEFAULT_PORT, topics=())
    settings = client_settings(bootstrap)
    warehouse = REPO_ROOT / ".cache" / "bench" / prefix
    baseline_root = REPO_ROOT / ".cache" / "bench" / f"{prefix}baseline"
    users = args.users or default_users(args.events, args.days)
    config = GeneratorConfig(
        users=users, days=args.days, start_date=START_DATE, max_events=args.events, topic_prefix=prefix
    )
    setup = {"users": users, "days": args.days, "start_date": START_DATE.isoformat(), "topic_prefix": prefix}
    create_topics(settings, topics, PARTITIONS, timeout_s=ADMIN_TIMEOUT_S)
    spark: SparkSession | None = None
    try:
        produced = produce(config, settings)
        python_produce = python_peak_mib()
        reset_python_peak()
        spark, spark_start = timed(lambda: SparkResource().session)
        context = spark_context(spark)
        kafka = KafkaResource(bootstrap_servers=bootstrap, topic_prefix=prefix, raw_engine=args.raw_engine)
        engine = kafka.engine(SparkResource().runs_locally)
        store = WarehouseResource(root=str(warehouse))
        last = START_DATE + timedelta(days=args.days - 1)
        job = medallion_job_with({"kafka": kafka, "warehouse": store})
        layers = run_layers(START_DATE, last, job, produced["events"], context)
        figures = summary(setup, produced, spark_start, layers)
        figures.update(  # peaks of the pipeline alone, before the baseline and the history runs
            spark_jvm_peak_rss_mib=spark_jvm_peak_mib(),
            python_peak_rss_mib_produce=python_produce,
            python_peak_rss_mib_pipeline=python_peak_mib(),
        )
        days = [START_DATE + timedelta(days=i) for i in range(args.days)]
        cold_root = REPO_ROOT / ".cache" / "bench" / f"{prefix}baseline-cold"
        figures.update(run_cold_baseline(bootstrap, prefix, store, cold_root, days))
        figures.update(run_baseline(spark, kafka, store, baseline_root, days, context))
        warm_root = REPO_ROOT / ".cache" / "bench" / f"{prefix}warm"
        figures.update(run_warm_pipeline(kafka, warm_root, START_DATE, last, produced["events"], context))
        # after the baselines, so the Spark engine's Kafka reads warm nothing they time
        other = other_engine(engine)
        figures["raw_engine"] = engine
        figures["layers"]["raw"]["engines"] = {
            engine: {k: figures["layers"]["raw"][k] for k in ("seconds", "events_per_s", "spark_jobs") if k in figures["layers"]["raw"]},
            other: raw_on_engine(
                bootstrap, prefix, other, REPO_ROOT / ".cache" / "bench" / f"{prefix}{other}", START_DATE, last, produced["events"], context
            ),
        }
        pipeline = figures["pipeline_with_jvm_start_seconds"]
        figures["baseline_ratio"] = round(pipeline / figures["baseline_seconds"], 2)  # both cold, each with its Spark start
        figures["pipeline_warm_ratio"] = round(figures["pipeline_warm_seconds"] / figures["baseline_warm_seconds"], 2)
        # a cold first run over a warm one: what earlier benches called baseline_ratio
        figures["baseline_warm_session_ratio"] = round(pipeline / figures["baseline_warm_seconds"], 2)
        if args.history_days is not None:
            history = figures["history"] = history_figures(args, prefix, bootstrap, settings, context)
            history["batch_share_of_pipeline"] = round(history["batch_seconds_n_days"] / figures["pipeline_seconds"], 3)
        if args.memory_events:
            figures["raw_peak_rss_mib"] = raw_memory_figures(args.memory_events, prefix, bootstrap, settings)
        if args.latency:
            # the dev stack brings its own Connect server: this process's session, idle from here on and holding
            # what the runs above cached, is stopped first so that it does not share the two cores with it
            stop_session(spark)
            spark = None
            figures["latency"] = latency_on_topics(args.latency, f"{prefix}lat-", bootstrap, settings)
        figures.update(
            warehouse=str(warehouse) if args.keep else None,
            baseline_root=str(baseline_root) if args.keep else None,
        )
    finally:
        stop_session(spark)  # first: its executors' cached Kafka consumers would warn of the topics deleted next
        if not args.keep:
            shutil.rmtree(warehouse, ignore_errors=True)
            shutil.rmtree(baseline_root, ignore_errors=True)
            delete_topics(settings, topics)
    print_table(figures)
    print("BENCH_JSON " + json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
