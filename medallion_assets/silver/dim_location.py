"""dim_location: one row per (city, stateCode, zip) seen in listens, with the state's name."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.keys import UNKNOWN, md5_key, with_unknown_member
from medallion_assets.tables import DIM_LOCATION


def location_key(city: str, state: str, zip_code: str) -> F.Column:
    """md5(city, stateCode, coalesce(zip, 'Unknown'))."""
    return md5_key(city, state, F.coalesce(F.col(zip_code), F.lit(UNKNOWN)))


KEY = ("city", "stateCode", "zip")


def smallest_coordinates(rows: DataFrame) -> DataFrame:
    """One row per (city, stateCode, zip): the smallest (latitude, longitude) seen, for determinism."""
    return (
        rows.groupBy(*KEY)
        .agg(F.min(F.struct("latitude", "longitude")).alias("_coords"))
        .select(*KEY, "_coords.latitude", "_coords.longitude")
    )


def locations(listens: DataFrame) -> DataFrame:
    """Distinct (city, stateCode, zip) of listens with their smallest coordinates."""
    return smallest_coordinates(listens.select("city", F.col("state").alias("stateCode"), "zip", "latitude", "longitude"))


def named_locations(kept_locations: DataFrame, state_codes: DataFrame) -> DataFrame:
    """Locations named by state ('NA' when unknown) and keyed."""
    return (
        kept_locations.join(F.broadcast(state_codes), "stateCode", "left")
        .withColumn("stateName", F.coalesce(F.col("stateName"), F.lit("NA")))
        .withColumn("locationKey", location_key("city", "stateCode", "zip"))
        .select(*DIM_LOCATION.column_names)
    )


def build_dim_location(kept_locations: DataFrame, state_codes: DataFrame) -> DataFrame:
    """Locations that passed the expectations, named by state, keyed, plus the unknown member."""
    return with_unknown_member(
        named_locations(kept_locations, state_codes),
        "locationKey",
        ("city", "stateCode", "stateName", "zip"),
        {"latitude": "double", "longitude": "double"},
    )


def location_upserts(new_locations: DataFrame, dim_location: DataFrame, state_codes: DataFrame) -> DataFrame:
    """The dim_location rows that new locations bring: new keys, and known keys whose smallest coordinates moved.

    Coordinates are the smallest over what the dimension holds and what is new, so merging
    days in any order, or a day twice, gives the table a rebuild from every day would.
    """
    new = new_locations.alias("n")
    known = dim_location.alias("d").join(
        new, [F.col(f"d.{c}").eqNullSafe(F.col(f"n.{c}")) for c in KEY], "left_semi"
    )
    both = new.select(*KEY, "latitude", "longitude").unionByName(known.select(*KEY, "latitude", "longitude"))
    return named_locations(smallest_coordinates(both), state_codes)
