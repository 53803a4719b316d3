"""Gold summaries computed from wide_fact."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def daily_user_summary(wide: DataFrame) -> DataFrame:
    """One row per (date_part, userId, firstName, lastName, level)."""
    return wide.groupBy("date_part", "userId", "firstName", "lastName", "level").agg(
        F.count(F.lit(1)).alias("total_streams"),
        F.countDistinct("songKey").alias("unique_songs"),
        F.countDistinct("artistKey").alias("unique_artists"),
    )


def daily_location_summary(wide: DataFrame) -> DataFrame:
    """One row per (date_part, city, state)."""
    return wide.groupBy("date_part", "city", "state").agg(
        F.count(F.lit(1)).alias("total_streams"),
        F.countDistinct("userId").alias("unique_users"),
        F.countDistinct("songKey").alias("unique_songs"),
    )


def artist_popularity(wide: DataFrame) -> DataFrame:
    """One row per artistName over all time."""
    return wide.groupBy("artistName").agg(
        F.count(F.lit(1)).alias("total_streams"),
        F.countDistinct("userId").alias("unique_users"),
        F.countDistinct("songKey").alias("unique_songs"),
        F.countDistinct("date_part").alias("active_days"),
    )
