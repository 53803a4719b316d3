"""Delta reads and idempotent writes, and the metadata every materialization records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from dagster import MetadataValue, TableColumn, TableSchema
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession


class MissingUpstreamTableError(RuntimeError):
    """An input table has not been materialized yet."""


def read_table(spark: SparkSession, uri: str, name: str) -> DataFrame:
    """The Delta table at uri; a clear error naming the asset when it does not exist yet."""
    if not DeltaTable.isDeltaTable(spark, uri):
        raise MissingUpstreamTableError(f"Delta table {name} does not exist at {uri}: materialize {name} first.")
    return spark.read.format("delta").load(uri)


def _in_list(column: str, values: Sequence[date]) -> str:
    """SQL predicate `column IN ('d1', ...)` for partition dates."""
    return f"{column} IN ({', '.join(repr(v.isoformat()) for v in values)})"


def replace_partitions(
    df: DataFrame, uri: str, column: str, values: Sequence[date], also_where: str | None = None
) -> None:
    """Overwrite exactly the given partitions (and those `also_where` selects), leaving the others untouched."""
    predicate = _in_list(column, values) + (f" OR {also_where}" if also_where else "")
    (
        df.repartition(column)  # one file per day and write, not one per shuffle partition
        .write.format("delta")
        .mode("overwrite")
        .partitionBy(column)
        .option("replaceWhere", predicate)
        .save(uri)
    )


def overwrite_table(df: DataFrame, uri: str) -> None:
    """Replace the whole table in one atomic commit."""
    df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(uri)


def append_once(df: DataFrame, uri: str, partition_column: str, app_id: str, version: int) -> None:
    """Append in one commit; Delta skips a repeat of the same (app_id, version) transaction."""
    (
        df.write.format("delta")
        .mode("append")
        .partitionBy(partition_column)
        .option("txnAppId", app_id)
        .option("txnVersion", version)
        .save(uri)
    )


def column_schema(df: DataFrame) -> TableSchema:
    """Dagster column schema of a DataFrame."""
    return TableSchema(columns=[TableColumn(f.name, f.dataType.simpleString()) for f in df.schema.fields])


def commit_metadata(spark: SparkSession, uri: str, days: Sequence[date] = ()) -> dict[str, Any]:
    """Version, rows written by the last commit, table URI, schema and the Spark application id.

    A run over several days records the rows of all of them as `rows_written`; `dagster/row_count`
    is set only when it is the row count of the one partition (or table) materialized.
    """
    table = DeltaTable.forPath(spark, uri)
    last = table.history(1).collect()[0]
    metrics = last["operationMetrics"] or {}
    rows = int(metrics.get("numOutputRows") or metrics.get("numTargetRowsInserted") or 0)
    counts = {"rows_written": rows} if len(days) > 1 else {"dagster/row_count": rows, "rows_written": rows}
    return {
        **counts,
        "delta_version": int(last["version"]),
        "delta_operation": last["operation"],
        "table_uri": MetadataValue.path(uri),
        "dagster/column_schema": column_schema(table.toDF()),
        "spark_app_id": spark.sparkContext.applicationId,
    }
