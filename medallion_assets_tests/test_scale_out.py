"""The same code on another engine, chosen by environment variables only: one `dagster asset
materialize` run over a range of days, on one Spark application (raw ingestion on its executors
too), builds every table a local session builds from the same events."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from pyarrow import fs

from medallion_assets.generator import GeneratorConfig, generate
from medallion_assets.resources.warehouse import WarehouseResource
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


def cli_run(local: LivePipeline, root: Path, home: Path, engine: Mapping[str, str], secret: str | None = None) -> LivePipeline:
    """The same topics built into a new warehouse by one CLI run over every asset and day, on `engine`
    (its Dagster instance in `home`); `secret` appears nowhere in its output or its event log."""
    other = local.sharing_topics(root)
    env = {**other.cli_env(home), **engine}
    command = [str(DAGSTER), "asset", "materialize", "-m", "medallion_assets", "--select", "*", "--partition-range", f"{FIRST}...{LAST}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()  # the whole range in one run
        assert run.status == DagsterRunStatus.SUCCESS
        events = [e.event_log_entry for e in instance.get_records_for_run(run.run_id, limit=100_000).records]
    materializations = [e.asset_materialization for e in events if e.is_dagster_event and e.dagster_event.is_step_materialization]
    assert {m.partition for m in materializations if m.asset_key == FACT_STREAM.asset_key} == {str(FIRST + timedelta(days=i)) for i in range(DAYS)}
    raw = [m for m in materializations if m.asset_key.path[0] == "raw"]
    assert {m.metadata["raw_engine"].value for m in raw} == {"spark"}  # auto: ingestion on the engine's executors
    tables = [m for m in materializations if m.asset_key.path[0] != "ops"]  # the quality log's audit starts no Spark
    written = [m for m in tables if m.asset_key.path[0] != "raw" or m.metadata["records_ingested"].value > 0]
    assert len(written) > len(tables) - len(raw)  # raw wrote records with Spark
    assert len({m.metadata["spark_app_id"].value for m in written}) == 1  # one Spark application for every step that wrote
    if secret:
        assert not [e for e in events if secret in repr(e)]  # metadata, logs, messages
        assert secret not in done.stdout + done.stderr
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
def on_cluster_and_object_store(local, spark_cluster, object_store, tmp_path_factory) -> tuple[LivePipeline, WarehouseResource]:
    """A CLI run on the standalone cluster whose warehouse is a fresh prefix of the store's bucket, as a
    production deployment runs: executors on other hosts share no disk, only the bucket. The prefix is then
    copied here for Spark to compare."""
    bucket = object_store["MEDALLION_WAREHOUSE"].removeprefix("s3a://").split("/")[0]
    prefix = f"{bucket}/t{uuid.uuid4().hex[:10]}"
    engine = {**spark_cluster, **object_store, "MEDALLION_WAREHOUSE": f"s3a://{prefix}"}
    copy = tmp_path_factory.mktemp("from-object-store")
    other = cli_run(local, copy, tmp_path_factory.mktemp("home"), engine, secret=object_store["AWS_SECRET_ACCESS_KEY"])
    fs.copy_files(prefix, str(copy), source_filesystem=s3_filesystem(object_store))
    warehouse = WarehouseResource(
        root=engine["MEDALLION_WAREHOUSE"], s3_endpoint=object_store["MEDALLION_S3_ENDPOINT"],
        s3_access_key_id=object_store["AWS_ACCESS_KEY_ID"], s3_secret_access_key=object_store["AWS_SECRET_ACCESS_KEY"],
    )
    return other, warehouse


def s3_filesystem(store: Mapping[str, str]) -> fs.S3FileSystem:
    """pyarrow's S3 client for the store (path-style, plain HTTP on 127.0.0.1)."""
    return fs.S3FileSystem(
        access_key=store["AWS_ACCESS_KEY_ID"], secret_key=store["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=store["MEDALLION_S3_ENDPOINT"].removeprefix("http://"), scheme="http", region="us-east-1",
    )


def assert_same_table(spark, local: LivePipeline, other: LivePipeline, table: Table) -> None:
    rows, only_local, only_other = differing_rows(spark, local.uri(table), other.uri(table))
    assert (only_local, only_other) == (0, 0), table.path
    assert rows == other.rows(table)  # and delta-rs reads what the other engine wrote


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.path)
def test_spark_connect_builds_the_tables_a_local_session_builds(local, over_connect, spark, table: Table):
    assert_same_table(spark, local, over_connect, table)


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.path)
def test_a_standalone_cluster_writing_to_object_storage_builds_the_tables_a_local_session_builds(
    local, on_cluster_and_object_store, spark, table: Table
):
    copied, on_s3 = on_cluster_and_object_store
    assert_same_table(spark, local, copied, table)
    remote = on_s3.delta_rs(table)  # delta-rs reads the bucket itself, with the warehouse's storage options
    assert remote is not None and remote.to_pyarrow_dataset().count_rows() == local.rows(table)
