"""Reading the reference CSV files, with clear errors for missing or malformed ones."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from medallion_assets.schemas import ddl

CORRUPT = "_corrupt_record"


class ReferenceDataError(ValueError):
    """A reference file is missing or does not have the expected columns."""


def read_reference_csv(spark: SparkSession, uri: str, columns: Sequence[str]) -> DataFrame:
    """All columns as text; rows that are not well-formed CSV keep their line in `_corrupt_record`."""
    if "://" not in uri and not os.path.isfile(uri):
        raise ReferenceDataError(f"Reference file {uri} does not exist.")
    header = spark.read.option("header", "true").csv(uri).columns
    missing = [c for c in columns if c not in header]
    if missing:
        raise ReferenceDataError(f"Reference file {uri} lacks columns {missing} (found {header}).")
    schema = StructType([StructField(c, StringType()) for c in header] + [StructField(CORRUPT, StringType())])
    return (
        spark.read.schema(ddl(schema))
        .option("header", "true")
        .option("escape", '"')
        .option("multiLine", "true")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .csv(uri)
        .select(*columns, CORRUPT)
        .cache()  # Spark refuses to query the corrupt-record column of an uncached file scan
    )


def well_formed(df: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(well-formed rows without the corrupt column, malformed rows)."""
    return df.where(F.col(CORRUPT).isNull()).drop(CORRUPT), df.where(F.col(CORRUPT).isNotNull())
