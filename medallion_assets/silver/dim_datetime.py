"""dim_datetime: one row per UTC hour of the partitions' range."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def build_dim_datetime(spark: SparkSession, start: datetime, end: datetime) -> DataFrame:
    """Hours in [start, end); weekendFlag is true on Saturday and Sunday only."""
    hours = spark.range(1).select(
        F.explode(
            F.sequence(
                F.to_timestamp(F.lit(start.strftime("%Y-%m-%d %H:00:00"))),
                F.to_timestamp(F.lit(_last_hour(end))),
                F.expr("INTERVAL 1 HOUR"),
            )
        ).alias("datetime")
    )
    return hours.select(
        F.unix_timestamp("datetime").alias("dateKey"),
        "datetime",
        F.dayofweek("datetime").alias("dayOfWeek"),
        F.dayofmonth("datetime").alias("dayOfMonth"),
        F.dayofyear("datetime").alias("dayOfYear"),
        F.month("datetime").alias("month"),
        F.year("datetime").alias("year"),
        F.dayofweek("datetime").isin(1, 7).alias("weekendFlag"),
    )


def _last_hour(end: datetime) -> str:
    """The last whole hour before an exclusive end."""
    return datetime.fromtimestamp(end.timestamp() - 3600, tz=end.tzinfo).strftime("%Y-%m-%d %H:00:00")
