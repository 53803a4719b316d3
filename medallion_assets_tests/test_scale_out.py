"""The same code on another engine, chosen by environment variables only: every table it builds is
the one a local session builds from the same events."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from medallion_assets.generator import GeneratorConfig, generate
from medallion_assets.tables import ALL_TABLES, Table
from medallion_assets_tests.pipeline import LivePipeline

FIRST = date(2024, 7, 1)
DAYS = 3
LAST = FIRST + timedelta(days=DAYS - 1)
DAGSTER = Path(sys.executable).with_name("dagster")
# Set by the write itself, so two builds of the same records differ there and nowhere else.
WRITE_TIME_COLUMNS = ("ingestion_timestamp",)


def differing_rows(spark, a: str, b: str) -> tuple[int, int, int]:
    """(rows of a, rows of a not in b, rows of b not in a), write-time columns aside."""
    left, right = (spark.read.format("delta").load(uri) for uri in (a, b))
    left, right = (df.drop(*WRITE_TIME_COLUMNS) for df in (left, right))
    return left.count(), left.exceptAll(right).count(), right.exceptAll(left).count()


@pytest.fixture(scope="module")
def local_and_connect(kafka_bootstrap, spark, spark_remote, tmp_path_factory) -> tuple[LivePipeline, LivePipeline]:
    """Three days of generated events built by this session's local Spark, and by one CLI run over Spark Connect."""
    local = LivePipeline.create(kafka_bootstrap, tmp_path_factory.mktemp("local"))
    local.produce(list(generate(GeneratorConfig(users=4, days=DAYS, start_date=FIRST, seed=11))))
    assert local.ingest().success and local.run_days(FIRST, LAST).success

    connect = local.sharing_topics(tmp_path_factory.mktemp("connect"))
    home = tmp_path_factory.mktemp("home")
    env = {**connect.cli_env(home), "SPARK_REMOTE": spark_remote}
    command = [str(DAGSTER), "asset", "materialize", "-m", "medallion_assets", "--select", "*", "--partition-range", f"{FIRST}...{LAST}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with DagsterInstance.from_config(str(home)) as instance:
        assert [r.status for r in instance.get_runs()] == [DagsterRunStatus.SUCCESS]
    return local, connect


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.path)
def test_spark_connect_builds_the_tables_a_local_session_builds(local_and_connect, spark, table: Table):
    local, connect = local_and_connect
    rows, only_local, only_connect = differing_rows(spark, local.uri(table), connect.uri(table))
    assert (only_local, only_connect) == (0, 0), table.path
    assert rows == connect.rows(table)  # and delta-rs reads what Connect wrote
