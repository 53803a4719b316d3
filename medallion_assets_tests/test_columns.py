"""What every asset declares about its table without a run: columns, lineage, owner, code version,
code references, and the check that the columns written are the declared ones. No JVM."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from dagster import AssetCheckSeverity, TableColumn, TableSchema
from deltalake import write_deltalake

from medallion_assets.definitions import all_assets
from medallion_assets.quality.schema import COLUMN_SCHEMA, schema_outcome
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.tables import ALL_TABLES, DIM_DATETIME, LINEAGE_LAYERS, TABLES_BY_KEY, WIDE_FACT, Table
from medallion_assets.versions import closure, code_version

pytestmark = pytest.mark.fast
SPARK_TYPES = {"string", "bigint", "int", "double", "boolean", "date", "timestamp", "binary"}
SPECS = {spec.key: (spec, asset) for asset in all_assets for spec in asset.specs}


def written(table: Table) -> TableSchema:
    """The schema a write of exactly the declared columns reports."""
    return TableSchema(columns=[TableColumn(c.name, c.type) for c in table.columns])


def test_nineteen_pipeline_tables_and_the_quality_log_each_with_one_asset():
    assert len(ALL_TABLES) == 19 and set(SPECS) == set(TABLES_BY_KEY)


def test_every_asset_shows_its_declared_columns_before_any_run():
    for key, (spec, _) in SPECS.items():
        table = TABLES_BY_KEY[key]
        schema = spec.metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == list(table.column_names) and table.columns, table.path
        assert len(set(table.column_names)) == len(table.columns), f"{table.path} declares a column twice"
        for column in schema.columns:
            assert column.type in SPARK_TYPES, (table.path, column.name, column.type)
            assert column.description and column.description.strip(), (table.path, column.name)


def test_key_and_partition_columns_are_declared_columns():
    for table in ALL_TABLES:
        assert set(table.key) <= set(table.column_names), table.path
        assert table.partition_column is None or table.partition_column in table.column_names, table.path


def test_lineage_names_upstream_assets_and_their_columns():
    for key, (spec, _) in SPECS.items():
        table = TABLES_BY_KEY[key]
        upstream = {dep.asset_key for dep in spec.deps if dep.asset_key in TABLES_BY_KEY}  # tables, not external sources
        lineage = spec.metadata.get("dagster/column_lineage")
        if table.layer not in LINEAGE_LAYERS or not upstream:
            assert lineage is None, table.path
            continue
        assert set(lineage.deps_by_column) == set(table.column_names), f"{table.path}: a column without sources"
        for column, deps in lineage.deps_by_column.items():
            for dep in deps:
                assert dep.asset_key in upstream, (table.path, column, dep.asset_key)
                assert dep.column_name in TABLES_BY_KEY[dep.asset_key].column_names, (table.path, column, dep)


def test_a_column_keeping_its_name_comes_from_that_column_and_a_derived_one_names_its_sources():
    lineage = SPECS[WIDE_FACT.asset_key][0].metadata["dagster/column_lineage"].deps_by_column
    assert [(d.asset_key.to_user_string(), d.column_name) for d in lineage["level"]] == [("silver/dim_users", "level")]
    assert [(d.asset_key.to_user_string(), d.column_name) for d in lineage["songName"]] == [("silver/dim_songs", "title")]
    # dim_artists has a latitude too: the listen's location is dim_location's
    assert [(d.asset_key.to_user_string(), d.column_name) for d in lineage["latitude"]] == [("silver/dim_location", "latitude")]


def test_every_asset_has_an_owner_a_layer_tag_a_code_version_and_a_code_reference():
    for key, (spec, asset) in SPECS.items():
        table = TABLES_BY_KEY[key]
        assert spec.owners == ["team:data-platform"] and spec.tags["layer"] == table.layer
        module = asset.op.compute_fn.decorated_fn.__module__
        assert spec.code_version == code_version(table, module), table.path
        (reference,) = spec.metadata["dagster/code_references"].code_references
        assert reference.file_path.endswith(module.replace(".", "/") + ".py") and reference.line_number > 0


def test_a_code_version_follows_the_code_of_its_layer_not_another_layers():
    gold = closure("medallion_assets.gold.assets")
    assert {"medallion_assets.gold.facts", "medallion_assets.gold.summaries", "medallion_assets.keys"} <= set(gold)
    assert not any(m.startswith(("medallion_assets.silver", "medallion_assets.bronze")) for m in gold)
    versions = {spec.code_version for spec, _ in SPECS.values()}
    assert len(versions) == len(SPECS)  # each table's own declaration counts too


def test_every_table_carries_a_blocking_column_schema_check():
    declared = {(spec.asset_key, spec.name): spec for asset in all_assets for spec in asset.check_specs}
    for table in ALL_TABLES:
        spec = declared[(table.asset_key, "column_schema_matches")]
        assert spec.blocking, table.path


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.path)
def test_the_schema_check_passes_on_the_declared_columns(table):
    outcome = schema_outcome(table, written(table))
    assert outcome.failed == 0 and outcome.total == len(table.columns) and COLUMN_SCHEMA[table].passed(outcome)


def test_the_schema_check_fails_on_an_added_a_dropped_or_a_retyped_column():
    table = WIDE_FACT
    columns = written(table).columns
    added = TableSchema(columns=[*columns, TableColumn("surprise", "string")])
    dropped = TableSchema(columns=[c for c in columns if c.name != "level"])
    retyped = TableSchema(columns=[TableColumn(c.name, "int" if c.name == "dateKey" else c.type) for c in columns])
    expected = {
        "added": {"column": "surprise", "declared": None, "written": "string"},
        "dropped": {"column": "level", "declared": "string", "written": None},
        "retyped": {"column": "dateKey", "declared": "bigint", "written": "int"},
    }
    for case, schema in {"added": added, "dropped": dropped, "retyped": retyped}.items():
        outcome = schema_outcome(table, schema)
        assert outcome.failed == 1 and outcome.sample == [expected[case]], case
        result = COLUMN_SCHEMA[table].result(outcome)
        assert not result.passed and result.severity == AssetCheckSeverity.ERROR
        assert result.metadata["failed_columns"].value == 1 and result.metadata["sample"].value == [expected[case]]


def test_a_reordered_schema_passes_and_a_daily_table_reports_each_day():
    table = WIDE_FACT
    reordered = TableSchema(columns=list(reversed(written(table).columns)))
    (day,) = COLUMN_SCHEMA[table].day_results({date(2024, 3, 1): schema_outcome(table, reordered)})
    assert day.passed and day.partition == "2024-03-01" and day.description.startswith("0 of 25 columns fail")


def test_a_step_that_wrote_nothing_checks_the_schema_the_delta_log_records(tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    arrow = {"bigint": pa.int64(), "int": pa.int32(), "timestamp": pa.timestamp("us", tz="UTC"), "boolean": pa.bool_()}
    columns = {c.name: pa.array([], arrow[c.type]) for c in DIM_DATETIME.columns}
    write_deltalake(warehouse.uri(DIM_DATETIME), pa.table(columns))
    stored = warehouse.unchanged(DIM_DATETIME).schema
    assert [(c.name, c.type) for c in stored.columns] == [(c.name, c.type) for c in DIM_DATETIME.columns]
    assert schema_outcome(DIM_DATETIME, stored).failed == 0 and stored.columns[0].description
