"""dim_location: one row per (city, stateCode, zip) seen in listens, with the state's name."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.keys import UNKNOWN, md5_key, with_unknown_member

COLUMNS = ("locationKey", "city", "stateCode", "stateName", "zip", "latitude", "longitude")


def location_key(city: str, state: str, zip_code: str) -> F.Column:
    """md5(city, stateCode, coalesce(zip, 'Unknown'))."""
    return md5_key(city, state, F.coalesce(F.col(zip_code), F.lit(UNKNOWN)))


def locations(listens: DataFrame) -> DataFrame:
    """Distinct (city, stateCode, zip) of listens; coordinates: the smallest pair seen, for determinism."""
    return (
        listens.select("city", F.col("state").alias("stateCode"), "zip", "latitude", "longitude")
        .groupBy("city", "stateCode", "zip")
        .agg(F.min(F.struct("latitude", "longitude")).alias("_coords"))
        .select("city", "stateCode", "zip", "_coords.latitude", "_coords.longitude")
    )


def build_dim_location(kept_locations: DataFrame, state_codes: DataFrame) -> DataFrame:
    """Locations that passed the expectations, named by state, keyed, plus the unknown member."""
    dim = (
        kept_locations.join(F.broadcast(state_codes), "stateCode", "left")
        .withColumn("stateName", F.coalesce(F.col("stateName"), F.lit("NA")))
        .withColumn("locationKey", location_key("city", "stateCode", "zip"))
        .select(*COLUMNS)
    )
    return with_unknown_member(
        dim, "locationKey", ("city", "stateCode", "stateName", "zip"), {"latitude": "double", "longitude": "double"}
    )
