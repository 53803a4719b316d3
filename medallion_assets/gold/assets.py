"""Gold: the stream fact, its wide form, and the summaries built on it."""


from collections.abc import Callable

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    asset,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_assets.delta_io import commit_metadata, overwrite_table, read_table, replace_partitions
from medallion_assets.gold.facts import build_fact_stream, build_wide_fact
from medallion_assets.gold.summaries import artist_popularity, daily_location_summary, daily_user_summary
from medallion_assets.integrity import count_mismatch, integrity_checks_for, null_keys, orphan_keys
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import partition_dates, table_asset_args
from medallion_assets.tables import (
    ARTIST_POPULARITY,
    BRONZE,
    DAILY_LOCATION_SUMMARY,
    DAILY_USER_SUMMARY,
    DIM_ARTISTS,
    DIM_DATETIME,
    DIM_LOCATION,
    DIM_SONGS,
    DIM_USERS,
    DIMENSIONS,
    FACT_STREAM,
    WIDE_FACT,
    Table,
)

LISTENS = BRONZE["listen_events"]


def _read(session: SparkSession, warehouse: WarehouseResource, table: Table) -> DataFrame:
    """A whole upstream table."""
    return read_table(session, warehouse.uri(table), table.path)


def write_days(
    context: AssetExecutionContext, session: SparkSession, warehouse: WarehouseResource, table: Table, df: DataFrame
) -> MaterializeResult:
    """Replace the run's days of a daily table."""
    uri = warehouse.uri(table)
    days = partition_dates(context)
    replace_partitions(df, uri, table.partition_column, days)
    return MaterializeResult(metadata=commit_metadata(session, uri, days))


FACT_KEY_DIMENSIONS = {
    "userKey": DIM_USERS, "songKey": DIM_SONGS, "artistKey": DIM_ARTISTS, "locationKey": DIM_LOCATION, "dateKey": DIM_DATETIME,
}


def fact_checks(fact: DataFrame, listens: DataFrame, dims: dict[str, DataFrame]) -> list[AssetCheckResult]:
    """No null key, every key in its dimension, one fact row per bronze listen of each day."""
    checks = integrity_checks_for(FACT_STREAM)
    return [
        checks["no_null_keys"].result(null_keys(fact, list(FACT_KEY_DIMENSIONS))),
        checks["keys_in_dimensions"].result(orphan_keys(fact, dims)),
        checks["fan_out"].result(
            count_mismatch(
                listens.groupBy(F.col("event_date").alias("date_part")).count(),
                fact.groupBy("date_part").count(),
                ["date_part"],
            )
        ),
    ]


@asset(
    deps=[LISTENS.asset_key, *[d.asset_key for d in DIMENSIONS]],
    **table_asset_args(FACT_STREAM, check_specs=[c.check_spec for c in integrity_checks_for(FACT_STREAM).values()]),
)
def fact_stream(context: AssetExecutionContext, spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Listens of the run's days, keyed to the dimensions."""
    session = spark.session
    days = partition_dates(context)
    listens = _read(session, warehouse, LISTENS).where(F.col("event_date").isin(days))
    dims = {key: _read(session, warehouse, table) for key, table in FACT_KEY_DIMENSIONS.items()}
    fact = build_fact_stream(listens, dims["userKey"], dims["songKey"], dims["artistKey"], dims["locationKey"])
    result = write_days(context, session, warehouse, FACT_STREAM, fact)
    written = _read(session, warehouse, FACT_STREAM).where(F.col("date_part").isin(days))
    return MaterializeResult(metadata=result.metadata, check_results=fact_checks(written, listens, dims))


@asset(deps=[FACT_STREAM.asset_key, *[d.asset_key for d in DIMENSIONS]], **table_asset_args(WIDE_FACT))
def wide_fact(context: AssetExecutionContext, spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
    """The fact of the run's days with every dimension's attributes."""
    session = spark.session
    fact = _read(session, warehouse, FACT_STREAM).where(F.col("date_part").isin(partition_dates(context)))
    dims = [_read(session, warehouse, t) for t in (DIM_USERS, DIM_SONGS, DIM_ARTISTS, DIM_LOCATION, DIM_DATETIME)]
    return write_days(context, session, warehouse, WIDE_FACT, build_wide_fact(fact, *dims))


def build_daily_summary(table: Table, summarise: Callable[[DataFrame], DataFrame]) -> AssetsDefinition:
    """A daily summary of wide_fact."""

    @asset(deps=[WIDE_FACT.asset_key], **table_asset_args(table))
    def summary(context: AssetExecutionContext, spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
        session = spark.session
        wide = _read(session, warehouse, WIDE_FACT).where(F.col("date_part").isin(partition_dates(context)))
        return write_days(context, session, warehouse, table, summarise(wide))

    return summary


@asset(deps=[WIDE_FACT.asset_key], **table_asset_args(ARTIST_POPULARITY))
def artist_popularity_asset(spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Streams, listeners, songs and active days per artist over all time."""
    session = spark.session
    uri = warehouse.uri(ARTIST_POPULARITY)
    overwrite_table(artist_popularity(_read(session, warehouse, WIDE_FACT)), uri)
    return MaterializeResult(metadata=commit_metadata(session, uri))


gold_assets = [
    fact_stream,
    wide_fact,
    build_daily_summary(DAILY_USER_SUMMARY, daily_user_summary),
    build_daily_summary(DAILY_LOCATION_SUMMARY, daily_location_summary),
    artist_popularity_asset,
]
