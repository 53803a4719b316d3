"""Exactly-once raw under a crash: kill -9 the ingestion inside its Delta write, before the commit, then rerun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from deltalake import DeltaTable

from medallion_assets.generator import GeneratorConfig, generate
from medallion_assets.tables import RAW
from medallion_assets_tests.pipeline import LivePipeline

LISTENS = RAW["listen_events"]


def wait_for(marker: Path, process: subprocess.Popen, timeout_s: float = 600) -> None:
    """Return once the ingestion holds between its data files and its commit."""
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        assert process.poll() is None, f"ingestion ended (exit {process.returncode}) before it held"
        assert time.monotonic() < deadline, "ingestion never reached its commit"
        time.sleep(0.2)


@pytest.mark.parametrize("engine", ["arrow", "spark"])
def test_kill_inside_the_write_before_its_commit_then_rerun_leaves_each_record_once(kafka_bootstrap, spark, tmp_path, engine):
    pipeline = LivePipeline.create(kafka_bootstrap, tmp_path / "warehouse").on_engine(engine)
    config = GeneratorConfig(users=40, days=2, start_date=date(2024, 8, 1), seed=9)
    listens = [e for e in generate(config) if e.topic == "listen_events"]
    pipeline.produce(listens)
    marker = tmp_path / "holding"
    command = [sys.executable, "-m", "medallion_assets_tests.hold_before_commit", str(marker), engine]
    env = {**pipeline.cli_env(tmp_path / "home"), "MEDALLION_RAW_ENGINE": engine}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(marker, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    table_dir = pipeline.root / LISTENS.path
    assert not list((table_dir / "_delta_log").glob("*.json")), "the killed run made no commit"

    [metadata] = [e.step_materialization_data.materialization.metadata for e in pipeline.ingest().get_asset_materialization_events()
                  if e.asset_key == LISTENS.asset_key]
    assert metadata["raw_engine"].value == engine and metadata["records_ingested"].value == len(listens)
    raw = spark.read.format("delta").load(pipeline.uri(LISTENS))
    assert raw.count() == len(listens)
    assert raw.select("kafka_partition", "kafka_offset").distinct().count() == len(listens)
    assert DeltaTable(pipeline.uri(LISTENS)).to_pyarrow_dataset().count_rows() == len(listens)
