"""Exactly-once raw under a crash: kill -9 the ingestion while Spark writes, then run it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from deltalake import DeltaTable

from medallion_assets.generator import GeneratorConfig, generate
from medallion_assets.tables import RAW
from medallion_assets_tests.pipeline import LivePipeline

DAGSTER = Path(sys.executable).with_name("dagster")
LISTENS = RAW["listen_events"]


def wait_for_uncommitted_files(table_dir: Path, process: subprocess.Popen, timeout_s: float = 600) -> None:
    """Return once data files exist and no commit does: Spark is writing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "ingestion ended before it wrote anything"
        commits = list((table_dir / "_delta_log").glob("*.json"))
        if not commits and any(table_dir.rglob("*.parquet")):
            return
        time.sleep(0.05)
    raise AssertionError("ingestion never started writing")


def test_kill_during_write_then_rerun_leaves_each_record_once(kafka_bootstrap, spark, tmp_path):
    pipeline = LivePipeline.create(kafka_bootstrap, tmp_path / "warehouse")
    config = GeneratorConfig(users=400, days=2, start_date=date(2024, 8, 1), seed=9)
    listens = [e for e in generate(config) if e.topic == "listen_events"]
    pipeline.produce(listens)
    env = pipeline.cli_env(tmp_path / "home")
    command = [str(DAGSTER), "asset", "materialize", "-m", "medallion_assets", "--select", LISTENS.path]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_uncommitted_files(pipeline.root / LISTENS.path, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    orphans = len(list((pipeline.root / LISTENS.path).rglob("*.parquet")))
    assert orphans > 0 and not list((pipeline.root / LISTENS.path / "_delta_log").glob("*.json"))

    assert pipeline.ingest().success
    raw = spark.read.format("delta").load(pipeline.uri(LISTENS))
    assert raw.count() == len(listens)
    assert raw.select("kafka_partition", "kafka_offset").distinct().count() == len(listens)
    assert DeltaTable(pipeline.uri(LISTENS)).to_pyarrow_dataset().count_rows() == len(listens)
