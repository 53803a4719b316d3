"""`dagster asset materialize` from the command line, configured only by environment variables."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from dagster import DagsterInstance
from deltalake import DeltaTable

from medallion_assets.definitions import all_assets
from medallion_assets.generator import GeneratorConfig, generate
from medallion_assets.tables import ALL_TABLES, BRONZE, FACT_STREAM
from medallion_assets_tests.pipeline import LivePipeline

FIRST = date(2024, 6, 1)
DAYS = 30
LISTENS = BRONZE["listen_events"]
DAGSTER = Path(sys.executable).with_name("dagster")


def test_every_asset_for_30_days_is_one_cli_run_on_one_jvm(kafka_bootstrap, spark_remote, tmp_path):
    pipeline = LivePipeline.create(kafka_bootstrap, tmp_path / "warehouse")
    pipeline.produce(list(generate(GeneratorConfig(users=3, days=DAYS, start_date=FIRST, seed=3))))
    env = {**pipeline.cli_env(tmp_path / "home"), "SPARK_REMOTE": spark_remote}  # the warm server `make dev` uses
    last = FIRST + timedelta(days=DAYS - 1)
    command = [
        str(DAGSTER), "asset", "materialize", "-m", "medallion_assets", "--select", "*",
        "--partition-range", f"{FIRST}...{last}",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    keys = [key.path for a in all_assets for key in a.keys]
    assert sorted(keys) == sorted(table.asset_key.path for table in ALL_TABLES)  # one asset per table
    for layer, name in keys:
        assert (pipeline.root / layer / name / "_delta_log").is_dir(), f"{layer}/{name}"
    fact_days = set(DeltaTable(pipeline.uri(FACT_STREAM)).to_pyarrow_dataset().to_table(columns=["date_part"])["date_part"].to_pylist())
    listen_days = set(DeltaTable(pipeline.uri(LISTENS)).to_pyarrow_dataset().to_table(columns=["event_date"])["event_date"].to_pylist())
    assert fact_days == listen_days and len(listen_days) > DAYS // 2

    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1
        records = instance.get_records_for_run(runs[0].run_id).records
    materializations = [r.event_log_entry.asset_materialization for r in records if r.event_log_entry.is_dagster_event and r.event_log_entry.dagster_event.is_step_materialization]
    assert len({m.partition for m in materializations if m.asset_key == FACT_STREAM.asset_key}) == DAYS
    assert len({m.metadata["spark_app_id"].value for m in materializations}) == 1
