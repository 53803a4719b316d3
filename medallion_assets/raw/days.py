"""The day of a raw record, and why a record falls outside the daily partitions (raw and Spark readers of raw)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion_assets.orchestration.partitions import partition_bounds

# Epoch-millisecond bounds of a day that Spark, delta-rs, Polars and DuckDB all represent (years 1..9999).
MIN_EPOCH_MS = -62135596800000
MAX_EPOCH_MS = 253402300799999

MALFORMED_WITHOUT_DAY = "malformed without a day"
NO_READABLE_TS = "no readable ts"


def epoch_ms_to_timestamp(column: Column) -> Column:
    """Timestamp of epoch milliseconds; null when missing or out of the representable range."""
    return F.when(column.between(MIN_EPOCH_MS, MAX_EPOCH_MS), F.timestamp_millis(column))


def outside_reason(day: date | None, malformed: bool) -> str | None:
    """Why a record with this day is processed by no daily partition, or None when one processes it."""
    first, last = partition_bounds()
    if day is None:
        return MALFORMED_WITHOUT_DAY if malformed else NO_READABLE_TS
    if day < first:
        return f"before {first}"
    if day > last:
        return f"after {last}"
    return None


def outside_partitions(raw: DataFrame) -> DataFrame:
    """Raw rows no daily partition processes, with a `reason` (the one `outside_reason` gives)."""
    first, last = partition_bounds()
    reason = (
        F.when(F.col("event_date").isNull() & F.col("parse_error").isNotNull(), F.lit(MALFORMED_WITHOUT_DAY))
        .when(F.col("event_date").isNull(), F.lit(NO_READABLE_TS))
        .when(F.col("event_date") < F.lit(first), F.lit(f"before {first}"))
        .otherwise(F.lit(f"after {last}"))
    )
    return raw.where(F.col("event_date").isNull() | ~F.col("event_date").between(first, last)).withColumn("reason", reason)


def outside_rows(rows: pa.Table) -> pa.Table:
    """Raw rows (Arrow) no daily partition processes: what `outside_partitions` selects."""
    first, last = partition_bounds()
    day = rows["event_date"]
    outside = pc.or_kleene(pc.is_null(day), pc.or_kleene(pc.less(day, pa.scalar(first)), pc.greater(day, pa.scalar(last))))
    return rows.filter(pc.fill_null(outside, True))


def outside_partitions_predicate() -> str:
    """SQL predicate on event_date selecting what `outside_partitions` returns."""
    first, last = partition_bounds()
    return f"event_date IS NULL OR event_date < '{first}' OR event_date > '{last}'"
