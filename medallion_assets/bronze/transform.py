"""Raw rows of some days -> bronze events: typed, renamed, deduplicated; rejects tagged."""

from __future__ import annotations

from typing import Literal

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion_assets.quality.expectations import expectations_for, first_violation
from medallion_assets.raw.parse import epoch_ms_to_timestamp
from medallion_assets.tables import BRONZE

DEDUP_KEY = ("userId", "sessionId", "itemInSession", "ts")
MALFORMED = "malformed"
DUPLICATE = "duplicate"


def normalise(raw: DataFrame, duration_unit: Literal["seconds", "milliseconds"] = "seconds") -> DataFrame:
    """Bronze columns of raw rows: timestamps, non-empty userId, lat/lon renamed, duration in seconds."""
    df = (
        raw.withColumn("event_timestamp", epoch_ms_to_timestamp(F.col("ts")))
        .withColumn("registration_time", epoch_ms_to_timestamp(F.col("registration")))
        .withColumn("userId", F.nullif(F.trim(F.col("userId")), F.lit("")))
        .withColumnRenamed("lat", "latitude")
        .withColumnRenamed("lon", "longitude")
    )
    if "duration" in df.columns and duration_unit == "milliseconds":
        df = df.withColumn("duration", F.col("duration") / 1000.0)
    return df


def classify(raw: DataFrame, topic: str, duration_unit: Literal["seconds", "milliseconds"] = "seconds") -> DataFrame:
    """Every raw row of the days with `reject_reason`: malformed, a drop expectation, duplicate or null (kept)."""
    rules = expectations_for(BRONZE[topic], "drop")
    df = normalise(raw, duration_unit).withColumn(
        "reject_reason",
        F.when(F.col("parse_error").isNotNull(), F.lit(MALFORMED)).otherwise(first_violation(rules)),
    )
    first_copy = Window.partitionBy(F.col("reject_reason").isNull(), *DEDUP_KEY).orderBy(
        "kafka_partition", "kafka_offset"
    )
    return df.withColumn(
        "reject_reason",
        F.when(
            F.col("reject_reason").isNull() & (F.row_number().over(first_copy) > 1), F.lit(DUPLICATE)
        ).otherwise(F.col("reject_reason")),
    )


def to_bronze(classified: DataFrame, topic: str) -> DataFrame:
    """The kept rows of `classify`, in the columns tables.py declares for the topic's bronze table."""
    return classified.where(F.col("reject_reason").isNull()).select(*BRONZE[topic].column_names)
