"""Gold summaries computed from wide_fact."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def distinct_count(column: str) -> Column:
    """The distinct non-null values of a column in a group, as countDistinct counts them (a long): the size
    of their set. countDistinct expands every row once per distinct column and aggregates twice; with
    artist_popularity's three counts over 300,000 rows of 5,000 artists, the sets took 0.8-1.3 s against
    2.0-3.1 s (one session, alternating)."""
    return F.size(F.collect_set(column)).cast("long")


def daily_user_summary(wide: DataFrame) -> DataFrame:
    """One row per (date_part, userId, firstName, lastName, level)."""
    return wide.groupBy("date_part", "userId", "firstName", "lastName", "level").agg(
        F.count(F.lit(1)).alias("total_streams"),
        distinct_count("songKey").alias("unique_songs"),
        distinct_count("artistKey").alias("unique_artists"),
    )


def daily_location_summary(wide: DataFrame) -> DataFrame:
    """One row per (date_part, city, state)."""
    return wide.groupBy("date_part", "city", "state").agg(
        F.count(F.lit(1)).alias("total_streams"),
        distinct_count("userId").alias("unique_users"),
        distinct_count("songKey").alias("unique_songs"),
    )


def artist_popularity(wide: DataFrame) -> DataFrame:
    """One row per artistName over all time."""
    return wide.groupBy("artistName").agg(
        F.count(F.lit(1)).alias("total_streams"),
        distinct_count("userId").alias("unique_users"),
        distinct_count("songKey").alias("unique_songs"),
        distinct_count("date_part").alias("active_days"),
    )
