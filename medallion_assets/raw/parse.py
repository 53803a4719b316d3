"""Kafka records -> raw rows: one row per record, parsed fields typed, bad input explained.

A field whose JSON value does not fit its type is null and named in `parse_error`; the record
keeps its day when `ts` itself is readable, so malformed rows reconcile per day.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from medallion_assets.orchestration.partitions import partition_bounds
from medallion_assets.schemas import CORRUPT_RECORD_COLUMN, ddl, event_fields, wire_schema

# Epoch-millisecond bounds that convert to a timestamp without overflow (years 1..9999).
MIN_EPOCH_MS = -62135596800000
MAX_EPOCH_MS = 253402300799999


KAFKA_RECORD_SCHEMA = "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"


def empty_records(spark: SparkSession) -> DataFrame:
    """No Kafka records, in the shape of Spark's Kafka source."""
    return spark.createDataFrame([], KAFKA_RECORD_SCHEMA)


def epoch_ms_to_timestamp(column: Column) -> Column:
    """Timestamp of epoch milliseconds; null when missing or out of the representable range."""
    return F.when(column.between(MIN_EPOCH_MS, MAX_EPOCH_MS), F.timestamp_millis(column))


def batch_timestamp(anchor: Column, at: datetime) -> Column:
    """`at` on every row, kept out of the code Spark generates for the query (`anchor`: a non-null string column).

    A timestamp literal, which current_timestamp() becomes, is spelled out in that code, so every
    batch compiled new code that the JVM then compiled again: about 1.5 s per 1M records on a warm
    session. A string literal is passed to the code by reference; joining the anchor's empty
    prefix to it keeps Spark from folding the cast into a timestamp literal.
    """
    return F.concat(F.lit(at.astimezone(timezone.utc).isoformat()), F.substring(anchor, 1, 0)).cast("timestamp")


def _misfit(text: Column, typed: Column, is_text: bool) -> Column:
    """Whether a field's JSON value does not fit the field's type."""
    if is_text:
        return text.startswith("{") | text.startswith("[")
    return text.isNotNull() & typed.isNull()


def parse_records(records: DataFrame, topic: str, ingested_at: datetime | None = None) -> DataFrame:
    """One raw row per Kafka record (topic, partition, offset, timestamp, key, value bytes), stamped
    `ingested_at` (default now)."""
    fields = event_fields(topic)
    text = F.col("value").cast("string")  # types by name: see schemas.ddl
    parsed = records.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.make_valid_utf8(F.col("key").cast("string")).alias("kafka_key"),
        F.make_valid_utf8(text).alias("value"),
        F.when(~F.is_valid_utf8(text), F.col("value")).alias("value_bytes"),
        F.is_valid_utf8(text).alias("_utf8"),
        F.from_json(text, ddl(wire_schema(topic)), {"mode": "PERMISSIVE", "allowSingleQuotes": "false"}).alias("_json"),
    )
    readable = F.col("_utf8") & F.col(f"_json.{CORRUPT_RECORD_COLUMN}").isNull()
    typed = {name: F.when(readable, F.col(f"_json.{name}").try_cast(dtype.simpleString())) for name, dtype in fields.items()}
    misfits = {name: _misfit(F.col(f"_json.{name}"), typed[name], isinstance(dtype, StringType)) for name, dtype in fields.items()}
    # The wrong fields are named inside a higher-order function, which Spark evaluates without
    # generating code for it, and only for a record with a misfit. Named inline, they made the
    # generated projection slower for every record (about 3 s of 15 per 570k page views).
    named = F.array(*[F.when(bad, F.lit(name)) for name, bad in misfits.items()])
    wrong = F.array_join(F.filter(named, lambda name: name.isNotNull()), ",")
    parse_error = (
        F.when(F.col("value").isNull(), F.lit("empty message"))
        .when(~F.col("_utf8"), F.lit("not UTF-8"))
        .when(F.col(f"_json.{CORRUPT_RECORD_COLUMN}").isNotNull(), F.lit("invalid JSON object"))
        .when(reduce(Column.__or__, misfits.values()), F.concat(F.lit("wrong type: "), wrong))
    )
    event_ts = epoch_ms_to_timestamp(typed["ts"])
    return parsed.select(
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
        "kafka_key",
        "value",
        "value_bytes",
        *[column.alias(name) for name, column in typed.items()],
        parse_error.alias("parse_error"),
        F.to_date(event_ts).alias("event_date"),
        batch_timestamp(F.col("kafka_topic"), ingested_at or datetime.now(timezone.utc)).alias("ingestion_timestamp"),
    )


MALFORMED_WITHOUT_DAY = "malformed without a day"
NO_READABLE_TS = "no readable ts"


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


def outside_partitions_predicate() -> str:
    """SQL predicate on event_date selecting what `outside_partitions` returns."""
    first, last = partition_bounds()
    return f"event_date IS NULL OR event_date < '{first}' OR event_date > '{last}'"
