"""dim_users: SCD Type 2 over level and names, dated by the events that show each change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion_assets.keys import OPEN_END_TS, UNKNOWN, md5_key, unknown_key
from medallion_assets.tables import DIM_USERS

TRACKED = ("level", "firstName", "lastName", "gender")


def user_observations(bronze_tables: Sequence[DataFrame]) -> DataFrame:
    """One row per (userId, event instant) with the attributes the user had then."""
    events = reduce(
        DataFrame.unionByName,
        [
            df.select(
                "userId", "level", "firstName", "lastName", "gender", "registration_time", "event_timestamp",
                F.col("kafka_topic"), "kafka_partition", "kafka_offset",
            )
            for df in bronze_tables
        ],
    ).where(F.col("userId").isNotNull() & F.col("event_timestamp").isNotNull())
    events = events.select(
        "userId", "registration_time", "event_timestamp", "kafka_topic", "kafka_partition", "kafka_offset",
        *[F.coalesce(F.col(c), F.lit(UNKNOWN)).alias(c) for c in TRACKED],
    )
    # Several events at one instant: the status change (level = new level) wins, then the latest record.
    last_at_instant = Window.partitionBy("userId", "event_timestamp").orderBy(
        F.desc(F.col("kafka_topic").endswith("status_change_events")),
        F.desc("kafka_topic"), F.desc("kafka_partition"), F.desc("kafka_offset"),
    )
    return (
        events.withColumn("_rank", F.row_number().over(last_at_instant))
        .where("_rank = 1")
        .drop("_rank", "kafka_topic", "kafka_partition", "kafka_offset")
    )


def versions_of(observations: DataFrame) -> DataFrame:
    """One row per user and run of unchanged tracked attributes among `observations` (user_observations' grain)."""
    by_time = Window.partitionBy("userId").orderBy("event_timestamp")
    attrs = F.concat_ws("\u0001", *TRACKED)
    versions = (
        observations.withColumn("registration_time", F.min("registration_time").over(Window.partitionBy("userId")))
        .withColumn("_changed", F.coalesce(F.lag(attrs).over(by_time) != attrs, F.lit(True)).cast("int"))
        .withColumn("_version", F.sum("_changed").over(by_time))
        .groupBy("userId", "_version", *TRACKED)
        .agg(F.min("event_timestamp").alias("row_activation_ts"), F.first("registration_time").alias("registration_time"))
    )
    next_version = Window.partitionBy("userId").orderBy("row_activation_ts")
    open_end = F.to_timestamp(F.lit(OPEN_END_TS))
    dim = (
        versions.withColumn("_next", F.lead("row_activation_ts").over(next_version))
        .withColumn("row_expiration_ts", F.coalesce(F.col("_next"), open_end))
        .withColumn("current_row", F.col("_next").isNull())
        .withColumn("userKey", md5_key("userId", "level", F.col("row_activation_ts").cast("string")))
    )
    return with_dates(dim).select(*DIM_USERS.column_names)


def build_dim_users(bronze_tables: Sequence[DataFrame]) -> DataFrame:
    """One row per user and run of unchanged tracked attributes, plus the unknown member."""
    versions = versions_of(user_observations(bronze_tables))
    return versions.unionByName(unknown_user(versions.sparkSession))


def first_seen(bronze_tables: Sequence[DataFrame]) -> DataFrame:
    """One row per user with a dated event in the tables: the user's earliest event instant (`_since`)."""
    events = reduce(DataFrame.unionByName, [df.select("userId", "event_timestamp") for df in bronze_tables])
    dated = events.where(F.col("userId").isNotNull() & F.col("event_timestamp").isNotNull())
    return dated.groupBy("userId").agg(F.min("event_timestamp").alias("_since"))


def replayed(versions: DataFrame, since: DataFrame, observations: DataFrame) -> DataFrame:
    """Observations from which versions_of rebuilds every version of `since`'s users.

    A version that starts before the user's `_since` stands for its run of observations: one at its
    start with its attributes and the user's registration time. Observations from `_since` on come as
    they are; `observations` must hold all of them (every day from the first `_since` on).
    """
    anchors = versions.join(since, "userId").where(F.col("row_activation_ts") < F.col("_since"))
    fresh = observations.join(since, "userId").where(F.col("event_timestamp") >= F.col("_since"))
    observed = ["userId", "registration_time", "event_timestamp", *TRACKED]
    return anchors.withColumnRenamed("row_activation_ts", "event_timestamp").select(*observed).unionByName(fresh.select(*observed))


def moved_spans(before: DataFrame, after: DataFrame) -> DataFrame:
    """One row per user and span (`_from`, `_to`) whose instants fall in another version in `after` than
    in `before`: a replaced version's whole span, and the end a kept version lost."""
    old = before.select("userId", "userKey", F.col("row_activation_ts").alias("_start"), F.col("row_expiration_ts").alias("_to"))
    new = after.select("userKey", F.col("row_expiration_ts").alias("_end"))
    moved = old.join(new, "userKey", "left").where(F.col("_end").isNull() | (F.col("_end") < F.col("_to")))
    return moved.select("userId", F.coalesce("_end", "_start").alias("_from"), "_to")


def with_dates(dim: DataFrame) -> DataFrame:
    """Add the date forms of the activation and expiration timestamps."""
    return dim.withColumn("row_activation_date", F.to_date("row_activation_ts")).withColumn(
        "row_expiration_date", F.to_date("row_expiration_ts")
    )


def unknown_user(spark) -> DataFrame:
    """The unknown member, valid for all time."""
    row = spark.range(1).select(
        unknown_key().alias("userKey"),
        *[F.lit(UNKNOWN).alias(c) for c in ("userId", "firstName", "lastName", "gender", "level")],
        F.lit(None).cast("timestamp").alias("registration_time"),
        F.to_timestamp(F.lit("1970-01-01 00:00:00")).alias("row_activation_ts"),
        F.to_timestamp(F.lit(OPEN_END_TS)).alias("row_expiration_ts"),
        F.lit(True).alias("current_row"),
    )
    return with_dates(row).select(*DIM_USERS.column_names)


def days_in_spans(listens: DataFrame, spans: DataFrame) -> list[date]:
    """Days of the listens that fall inside one of the users' spans (`moved_spans`' grain)."""
    inside = (
        (F.col("userId") == F.col("_user")) & (F.col("event_timestamp") >= F.col("_from")) & (F.col("event_timestamp") < F.col("_to"))
    )
    spans = spans.withColumnRenamed("userId", "_user")
    return [row["event_date"] for row in listens.join(spans, inside).select("event_date").distinct().collect()]
