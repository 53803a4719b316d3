"""`dagster asset materialize` from the command line, configured only by environment variables."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

from medallion_assets.definitions import all_assets
from medallion_assets.generator import GeneratorConfig, generate
from medallion_assets.tables import FACT_STREAM
from medallion_assets_tests.pipeline import LivePipeline

DAY = date(2024, 6, 1)
DAGSTER = Path(sys.executable).with_name("dagster")


def test_materialize_every_asset_for_a_day_from_the_cli(kafka_bootstrap, tmp_path):
    pipeline = LivePipeline.create(kafka_bootstrap, tmp_path / "warehouse")
    pipeline.produce(list(generate(GeneratorConfig(users=5, days=1, start_date=DAY, seed=3))))
    env = pipeline.cli_env(tmp_path / "home")
    command = [str(DAGSTER), "asset", "materialize", "-m", "medallion_assets", "--select", "*", "--partition", DAY.isoformat()]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    keys = [key.path for a in all_assets for key in a.keys]
    assert len(keys) == 19
    for layer, name in keys:
        assert (pipeline.root / layer / name / "_delta_log").is_dir(), f"{layer}/{name}"
    assert pipeline.rows(FACT_STREAM) > 0
