"""Throughput benchmark: produce N events to fresh Kafka topics, then time raw, bronze, silver and gold.

Every layer is one in-process Dagster run, all in this process and so on one Spark session.
The figures are printed as a table, then as JSON on one line starting with `BENCH_JSON `.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from dagster import AssetSelection, DagsterInstance, EnvVar, ExecuteInProcessResult

from medallion_assets.dev.kafka_local import DEFAULT_PORT, default_home, ensure_broker
from medallion_assets.generator import GeneratorConfig, generate, write_kafka
from medallion_assets.paths import REPO_ROOT
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runs import materialize_days
from medallion_assets.topics import BOOTSTRAP_ENV, TOPICS, client_settings, create_topics, physical_topic

LAYERS: tuple[str, ...] = ("raw", "bronze", "silver", "gold")
START_DATE = date(2025, 1, 1)
PARTITIONS = 3
# The generator averages about 64 events per user and day; sizing users with a slightly higher
# figure makes the first cohort of users span the whole window, so every day partition has data.
EVENTS_PER_USER_DAY = 70
ADMIN_TIMEOUT_S = 30.0


@dataclass
class LayerFigures:
    """Wall time and rows written of one layer's run, with rows per asset and each step's duration."""

    seconds: float
    rows: int
    asset_rows: dict[str, int]
    steps: dict[str, float]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m medallion_assets.bench", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to produce (default 1000000)")
    parser.add_argument("--users", type=int, help=f"listeners (default: events / (days * {EVENTS_PER_USER_DAY}))")
    parser.add_argument("--days", type=int, default=7, help=f"days of events from {START_DATE} (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and the topics")
    args = parser.parse_args(argv)
    if args.events < 1 or args.days < 1 or (args.users is not None and args.users < 1):
        parser.error("--events, --users and --days must be at least 1")
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


def layer_figures(result: ExecuteInProcessResult, seconds: float) -> LayerFigures:
    """Rows written and step durations of one layer's run.

    A run over several days records one materialization per day partition, each carrying the
    whole run's `rows_written`, so the count is taken once per asset.
    """
    asset_rows: dict[str, int] = {}
    steps: dict[str, float] = {}
    for event in result.all_events:
        if event.is_step_materialization:
            count = event.step_materialization_data.materialization.metadata.get("rows_written")
            asset_rows[event.asset_key.to_user_string()] = int(count.value) if count is not None else 0
        elif event.is_step_success and event.step_key is not None:
            steps[event.step_key] = round(event.event_specific_data.duration_ms / 1000, 2)
    return LayerFigures(round(seconds, 2), sum(asset_rows.values()), asset_rows, steps)


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


def run_layers(first: date, last: date, resources: dict[str, Any]) -> dict[str, LayerFigures]:
    """Materialize raw, bronze, silver and gold, one timed in-process run each, in one Spark session."""
    instance = DagsterInstance.ephemeral()
    figures = {}
    for layer in LAYERS:
        run = partial(materialize_days, first, last, AssetSelection.groups(layer), resources, instance)
        result, seconds = timed(run)
        figures[layer] = layer_figures(result, seconds)
    return figures


def summary(
    setup: dict[str, Any], produced: dict[str, Any], spark_start: float, layers: dict[str, LayerFigures]
) -> dict[str, Any]:
    """Every figure of the benchmark, JSON-ready."""
    pipeline = sum(layer.seconds for layer in layers.values())
    events = produced["events"]
    return {
        **setup,
        **produced,
        "spark_start_seconds": round(spark_start, 2),
        "layers": {name: asdict(layer) for name, layer in layers.items()},
        "pipeline_seconds": round(pipeline, 2),
        "pipeline_events_per_s": round(events / pipeline),
        "pipeline_with_jvm_start_seconds": round(pipeline + spark_start, 2),
        "pipeline_with_jvm_start_events_per_s": round(events / (pipeline + spark_start)),
    }


def print_table(figures: dict[str, Any]) -> None:
    """The figures as a readable table, slowest steps per layer included."""
    print(f"\nmedallion_assets benchmark: {figures['events']:,} events, {figures['users']:,} users, "
          f"{figures['days']} days from {figures['start_date']}, topics {figures['topic_prefix']}*")
    print(f"  {'stage':<28}{'seconds':>10}{'rows':>12}{'events/s':>12}")
    print(f"  {'produce (not in pipeline)':<28}{figures['produce_seconds']:>10.2f}{figures['events']:>12,}"
          f"{figures['produce_events_per_s']:>12,}")
    print(f"  {'spark session start':<28}{figures['spark_start_seconds']:>10.2f}")
    for name, layer in figures["layers"].items():
        print(f"  {name:<28}{layer['seconds']:>10.2f}{layer['rows']:>12,}")
    print(f"  {'pipeline (raw..gold)':<28}{figures['pipeline_seconds']:>10.2f}{'':>12}"
          f"{figures['pipeline_events_per_s']:>12,}")
    print(f"  {'pipeline + spark start':<28}{figures['pipeline_with_jvm_start_seconds']:>10.2f}{'':>12}"
          f"{figures['pipeline_with_jvm_start_events_per_s']:>12,}")
    jvm = figures["spark_jvm_peak_rss_mib"]
    print(f"  peak RSS: Spark driver JVM {jvm if jvm is not None else 'n/a'} MiB; Python "
          f"{figures['python_peak_rss_mib_produce']} MiB while producing, "
          f"{figures['python_peak_rss_mib_pipeline']} MiB during the pipeline")
    print("  step seconds (Dagster):")
    for name, layer in figures["layers"].items():
        steps = sorted(layer["steps"].items(), key=lambda item: -item[1])
        print(f"    {name:<8}" + ", ".join(f"{step} {seconds:.1f}" for step, seconds in steps))
    if figures["warehouse"]:
        print(f"  kept: warehouse {figures['warehouse']} and topics {figures['topic_prefix']}*")


def main(argv: Sequence[str] | None = None) -> None:
    """Produce the events, run the layers, print the figures, clean up unless --keep."""
    args = parse_args(argv)
    prefix = f"bench-{int(time.time())}-"
    topics = [physical_topic(topic, prefix) for topic in TOPICS]
    bootstrap = EnvVar(BOOTSTRAP_ENV).get_value() or ensure_broker(default_home(), DEFAULT_PORT, topics=())
    settings = client_settings(bootstrap)
    warehouse = REPO_ROOT / ".cache" / "bench" / prefix
    users = args.users or default_users(args.events, args.days)
    config = GeneratorConfig(
        users=users, days=args.days, start_date=START_DATE, max_events=args.events, topic_prefix=prefix
    )
    setup = {"users": users, "days": args.days, "start_date": START_DATE.isoformat(), "topic_prefix": prefix}
    create_topics(settings, topics, PARTITIONS, timeout_s=ADMIN_TIMEOUT_S)
    try:
        produced = produce(config, settings)
        python_produce = python_peak_mib()
        reset_python_peak()
        _, spark_start = timed(lambda: SparkResource().session)
        resources = {
            "kafka": KafkaResource(bootstrap_servers=bootstrap, topic_prefix=prefix),
            "warehouse": WarehouseResource(root=str(warehouse)),
        }
        last = START_DATE + timedelta(days=args.days - 1)
        figures = summary(setup, produced, spark_start, run_layers(START_DATE, last, resources))
        figures.update(
            spark_jvm_peak_rss_mib=spark_jvm_peak_mib(),
            python_peak_rss_mib_produce=python_produce,
            python_peak_rss_mib_pipeline=python_peak_mib(),
            warehouse=str(warehouse) if args.keep else None,
        )
    finally:
        if not args.keep:
            shutil.rmtree(warehouse, ignore_errors=True)
            delete_topics(settings, topics)
    print_table(figures)
    print("BENCH_JSON " + json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
