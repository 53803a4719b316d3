"""The main job as users start it: `python -m medallion_assets.demo`, configured by environment."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from deltalake import DeltaTable

from medallion_assets.tables import ALL_TABLES


def test_demo_builds_every_table(kafka_bootstrap, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MEDALLION_TOPIC_PREFIX": f"demo{uuid.uuid4().hex[:8]}-",
        "MEDALLION_WAREHOUSE": str(tmp_path / "warehouse"),
    }
    command = [sys.executable, "-m", "medallion_assets.demo", "--users", "6", "--days", "2", "--dialect", "seed"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(ALL_TABLES) == 19
    for table in ALL_TABLES:
        assert f"  {table.path} " in done.stdout
        DeltaTable(str(tmp_path / "warehouse" / table.path))  # readable without a JVM
    listens = DeltaTable(str(tmp_path / "warehouse" / "gold" / "fact_stream")).to_pyarrow_dataset().count_rows()
    assert listens > 0
