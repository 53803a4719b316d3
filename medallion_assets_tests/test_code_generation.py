"""A step over few rows interprets Spark's standalone projections and commits its day writes with
delta-rs; one over many, or over every day, generates them as Spark does by default and writes through
Spark; the session is left as it was either way."""

from datetime import date

import pyarrow as pa
from dagster import DagsterInstance, MaterializeResult, materialize

import medallion_assets.resources.spark as spark_module
from medallion_assets.orchestration.partitions import range_tags
from medallion_assets.resources.spark import CODEGEN_FACTORY_MODE, FEW_ROWS, code_generation_for
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import table_asset
from medallion_assets.tables import DAILY_USER_SUMMARY, RAW

DAY = date(2025, 1, 1)


def test_few_rows_interpret_and_the_session_is_left_as_it_was(spark):
    default = spark.conf.get(CODEGEN_FACTORY_MODE)
    assert default != "NO_CODEGEN"
    with code_generation_for(spark, 1_000) as interpreted:
        assert interpreted and spark.conf.get(CODEGEN_FACTORY_MODE) == "NO_CODEGEN"
        rows = spark.range(4).selectExpr("id", "id * 2 AS twice").where("id % 2 = 1").collect()
        assert [(r.id, r.twice) for r in rows] == [(1, 2), (3, 6)]
    assert spark.conf.get(CODEGEN_FACTORY_MODE) == default


def test_many_rows_or_every_day_keep_generated_code(spark):
    for rows in (FEW_ROWS + 1, None):
        with code_generation_for(spark, rows) as interpreted:
            assert not interpreted and spark.conf.get(CODEGEN_FACTORY_MODE) != "NO_CODEGEN"


def test_a_gold_step_fits_its_code_generation_to_the_raw_rows_of_its_days(spark, tmp_path, monkeypatch):
    """Three raw rows on the run's day: the step runs interpreted and writes few rows; with a threshold
    below three, generated, through Spark's writer."""
    warehouse = WarehouseResource(root=str(tmp_path))
    listens = pa.Table.from_pylist([{"event_date": DAY, "kafka_offset": i} for i in range(3)], schema=RAW["listen_events"].arrow_schema())
    warehouse.append_once(RAW["listen_events"], pa.RecordBatchReader.from_batches(listens.schema, listens.to_batches()), {"test": 1})
    seen: list[str] = []

    @table_asset(DAILY_USER_SUMMARY)
    def summary(warehouse: WarehouseResource) -> MaterializeResult:
        seen.append((warehouse.session.conf.get(CODEGEN_FACTORY_MODE), warehouse._few_rows))
        return MaterializeResult(asset_key=DAILY_USER_SUMMARY.asset_key)

    def run() -> None:
        materialize([summary], instance=DagsterInstance.ephemeral(), resources={"warehouse": warehouse}, tags=range_tags(DAY, DAY))

    run()
    monkeypatch.setattr(spark_module, "FEW_ROWS", 2)
    run()
    assert seen[0] == ("NO_CODEGEN", True) and seen[1][0] != "NO_CODEGEN" and seen[1][1] is False
    assert spark.conf.get(CODEGEN_FACTORY_MODE) != "NO_CODEGEN"  # left as it was
