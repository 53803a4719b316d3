"""Raw rows of some days -> bronze events: typed, renamed, deduplicated; rejects tagged."""

from __future__ import annotations

from typing import Literal

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion_assets.quality.expectations import expectations_for, first_violation
from medallion_assets.raw.days import epoch_ms_to_timestamp
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


def flag(raw: DataFrame, topic: str, duration_unit: Literal["seconds", "milliseconds"] = "seconds") -> DataFrame:
    """Every raw row of the days with `reject_reason`: malformed, a drop expectation, or null (a candidate to keep)."""
    rules = expectations_for(BRONZE[topic], "drop")
    return normalise(raw, duration_unit).withColumn(
        "reject_reason",
        F.when(F.col("parse_error").isNotNull(), F.lit(MALFORMED)).otherwise(first_violation(rules)),
    )


def duplicate_copies(flagged: DataFrame) -> DataFrame:
    """(kafka_partition, kafka_offset, `_duplicate` = true) of every candidate whose DEDUP_KEY an earlier record of the topic has.

    Only the key and the two offset columns are shuffled, not whole rows; the result is as small
    as the duplicates are few.
    """
    first_copy = Window.partitionBy(*DEDUP_KEY).orderBy("kafka_partition", "kafka_offset")
    return (
        flagged.where(F.col("reject_reason").isNull())
        .select(*DEDUP_KEY, "kafka_partition", "kafka_offset")
        .withColumn("copy", F.row_number().over(first_copy))
        .where(F.col("copy") > 1)
        .select("kafka_partition", "kafka_offset", F.lit(True).alias("_duplicate"))
    )


def mark_duplicates(flagged: DataFrame, copies: DataFrame) -> DataFrame:
    """`flag`'s rows with the `duplicate_copies` among them rejected as duplicates.

    A Kafka record is one raw row, so (kafka_partition, kafka_offset) names it; the duplicate copies
    are joined back by those two columns, broadcast, so the rows themselves are never shuffled here.
    """
    marked = flagged.join(F.broadcast(copies), ["kafka_partition", "kafka_offset"], "left")
    return marked.withColumn(
        "reject_reason",
        F.when(F.col("reject_reason").isNull() & F.col("_duplicate"), F.lit(DUPLICATE)).otherwise(F.col("reject_reason")),
    ).drop("_duplicate")


def mark_duplicates_in_one_pass(flagged: DataFrame) -> DataFrame:
    """`flag`'s rows with every candidate whose DEDUP_KEY an earlier record of the topic has rejected as a
    duplicate, by one window over whole rows: what `mark_duplicates` gives, for rows few enough that
    shuffling them costs less than finding the copies first and joining them back."""
    candidate = F.col("reject_reason").isNull()
    first_copy = Window.partitionBy(candidate, *DEDUP_KEY).orderBy("kafka_partition", "kafka_offset")
    return flagged.withColumn(
        "reject_reason", F.when(candidate & (F.row_number().over(first_copy) > 1), F.lit(DUPLICATE)).otherwise(F.col("reject_reason"))
    )


def classify(
    raw: DataFrame, topic: str, duration_unit: Literal["seconds", "milliseconds"] = "seconds", one_pass: bool = False
) -> DataFrame:
    """Every raw row of the days with `reject_reason`: malformed, a drop expectation, duplicate or null (kept)."""
    flagged = flag(raw, topic, duration_unit)
    return mark_duplicates_in_one_pass(flagged) if one_pass else mark_duplicates(flagged, duplicate_copies(flagged))


def to_bronze(classified: DataFrame, topic: str) -> DataFrame:
    """The kept rows of `classify`, in the columns tables.py declares for the topic's bronze table."""
    return classified.where(F.col("reject_reason").isNull()).select(*BRONZE[topic].column_names)
