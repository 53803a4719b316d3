"""The main job as users start it: `python -m medallion_assets.demo`, configured by environment."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetRecordsFilter, DagsterInstance
from deltalake import DeltaTable

from medallion_assets.definitions import all_assets
from medallion_assets.tables import ALL_TABLES

DAYS = 2


def test_demo_builds_every_table_and_each_day_reports_its_own_figures(kafka_bootstrap, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEDALLION_TOPIC_PREFIX": f"demo{uuid.uuid4().hex[:8]}-",
        "MEDALLION_WAREHOUSE": str(tmp_path / "warehouse"),
    }
    command = [sys.executable, "-m", "medallion_assets.demo", "--users", "6", "--days", str(DAYS), "--dialect", "seed"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    # a normal run's log holds nothing a user must learn to ignore
    printed = done.stdout + done.stderr
    for noise in ("emitted no result", "did not yield or return expected outputs", " WARN ", "Traceback"):
        assert noise not in printed, [line for line in printed.splitlines() if noise in line][:3]
    tables = {t.asset_key: t for t in ALL_TABLES}
    for table in ALL_TABLES:
        assert f"  {table.path} " in done.stdout
        DeltaTable(str(tmp_path / "warehouse" / table.path))  # readable without a JVM
    listens = DeltaTable(str(tmp_path / "warehouse" / "gold" / "fact_stream")).to_pyarrow_dataset().count_rows()
    assert listens > 0

    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.job_name == "medallion_job"  # named, so the propagation sensor and the UI know it
        daily = [a for a in all_assets if a.partitions_def is not None]
        for key in [key for asset in daily for key in asset.keys]:
            table = tables[key]
            records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=100).records
            materializations = [r.asset_materialization for r in records]
            assert len(materializations) == DAYS, table.path
            dataset = DeltaTable(str(tmp_path / "warehouse" / table.path)).to_pyarrow_dataset()
            for m in materializations:
                own = dataset.count_rows(filter=pc.field(table.partition_column) == pa.scalar(date.fromisoformat(m.partition)))
                assert m.metadata["dagster/partition_row_count"].value == own, (table.path, m.partition)
                assert m.metadata["dagster/row_count"].value == dataset.count_rows(), table.path
        evaluations = Counter(
            (r.event_log_entry.dagster_event.event_specific_data.asset_key, r.event_log_entry.dagster_event.event_specific_data.check_name)
            for r in instance.get_records_for_run(run.run_id, limit=100_000).records
            if r.event_log_entry.is_dagster_event and r.event_log_entry.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
        )
        for asset in daily:
            for spec in asset.check_specs:
                assert evaluations[(spec.asset_key, spec.name)] == DAYS, spec.key  # one evaluation per day

    # The demo's run as an operator finds it: one row per check evaluation in ops/quality_log, read
    # with delta-rs, and a rollback plan naming every table it created.
    log = DeltaTable(str(tmp_path / "warehouse" / "ops" / "quality_log")).to_pyarrow_table().to_pylist()
    assert sum(1 for r in log if r["run_id"] == run.run_id and r["kind"] == "check") == sum(evaluations.values())
    plan = subprocess.run(
        [sys.executable, "-m", "medallion_assets.ops", "rollback", run.run_id, "--dry-run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert plan.returncode == 0, plan.stderr
    for table in ALL_TABLES:
        assert f"  {table.path} " in plan.stdout and "-> empty (the run created it)" in plan.stdout, table.path
