"""The same code on another engine, chosen by environment variables only: every table it builds is
the one a local session builds from the same events."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from medallion_assets.generator import GeneratorConfig, generate
from medallion_assets.tables import ALL_TABLES, FACT_STREAM, Table
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


def cli_run(local: LivePipeline, root: Path, home: Path, engine: Mapping[str, str]) -> LivePipeline:
    """The same topics built into a new warehouse by one CLI run over every asset and day, on `engine`
    (its Dagster instance in `home`)."""
    other = local.sharing_topics(root)
    env = {**other.cli_env(home), **engine}
    command = [str(DAGSTER), "asset", "materialize", "-m", "medallion_assets", "--select", "*", "--partition-range", f"{FIRST}...{LAST}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with DagsterInstance.from_config(str(home)) as instance:
        assert [r.status for r in instance.get_runs()] == [DagsterRunStatus.SUCCESS]
    return other


@pytest.fixture(scope="module")
def local(kafka_bootstrap, spark, tmp_path_factory) -> LivePipeline:
    """Three days of generated events built by this session's local Spark."""
    pipeline = LivePipeline.create(kafka_bootstrap, tmp_path_factory.mktemp("local"))
    pipeline.produce(list(generate(GeneratorConfig(users=4, days=DAYS, start_date=FIRST, seed=11))))
    assert pipeline.ingest().success and pipeline.run_days(FIRST, LAST).success
    assert pipeline.rows(FACT_STREAM) > 0  # so an engine that wrote nothing cannot match it
    return pipeline


@pytest.fixture(scope="module")
def over_connect(local, spark_remote, tmp_path_factory) -> LivePipeline:
    return cli_run(local, tmp_path_factory.mktemp("connect"), tmp_path_factory.mktemp("home"), {"SPARK_REMOTE": spark_remote})


@pytest.fixture(scope="module")
def on_cluster(local, spark_cluster, tmp_path_factory) -> LivePipeline:
    return cli_run(local, tmp_path_factory.mktemp("cluster"), tmp_path_factory.mktemp("home"), spark_cluster)


def assert_same_table(spark, local: LivePipeline, other: LivePipeline, table: Table) -> None:
    rows, only_local, only_other = differing_rows(spark, local.uri(table), other.uri(table))
    assert (only_local, only_other) == (0, 0), table.path
    assert rows == other.rows(table)  # and delta-rs reads what the other engine wrote


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.path)
def test_spark_connect_builds_the_tables_a_local_session_builds(local, over_connect, spark, table: Table):
    assert_same_table(spark, local, over_connect, table)


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.path)
def test_a_standalone_cluster_builds_the_tables_a_local_session_builds(local, on_cluster, spark, table: Table):
    assert_same_table(spark, local, on_cluster, table)

