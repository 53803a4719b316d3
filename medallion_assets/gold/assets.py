"""Gold: the stream fact, its wide form, and the summaries built on it."""

from collections.abc import Callable, Iterator
from functools import partial

from dagster import AssetCheckEvaluation, AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.gold.facts import build_fact_stream, build_wide_fact
from medallion_assets.gold.summaries import artist_popularity, daily_location_summary, daily_user_summary
from medallion_assets.orchestration.partitions import days_of_run
from medallion_assets.quality.integrity import (
    FAN_OUT,
    KEYS_IN_DIMENSIONS,
    NO_NULL_KEYS,
    STREAMS_MATCH_FACT,
    WIDE_FACT_ROWS,
    count_mismatch,
    fact_key_outcomes,
    total_mismatch,
)
from medallion_assets.resources.spark import side_by_side
from medallion_assets.resources.warehouse import WarehouseResource, of_groups
from medallion_assets.runtime import daily_report, gate, partition_dates, table_asset, table_report
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
FACT_KEY_DIMENSIONS = {
    "userKey": DIM_USERS, "songKey": DIM_SONGS, "artistKey": DIM_ARTISTS, "locationKey": DIM_LOCATION, "dateKey": DIM_DATETIME,
}
Event = MaterializeResult | AssetCheckEvaluation


def by_day(counts: dict) -> dict[tuple, int]:
    """Per-day counts keyed (day,), the shape `count_mismatch` compares."""
    return {(day,): n for day, n in counts.items()}


@table_asset(FACT_STREAM, checks=[NO_NULL_KEYS, KEYS_IN_DIMENSIONS, FAN_OUT], upstream=[LISTENS, *DIMENSIONS])
def fact_stream(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Event]:
    """Listens of the run's days, keyed to the dimensions."""
    days = partition_dates(context)
    dims = {key: warehouse.read(table) for key, table in FACT_KEY_DIMENSIONS.items()}
    fact = build_fact_stream(warehouse.read(LISTENS, days), dims["userKey"], dims["songKey"], dims["artistKey"], dims["locationKey"])
    written = fact.cache()  # the checks read the rows the write computed, not the table again
    try:  # the write and the key checks overlap: a batch's are mostly driver time
        commit, (nulls, orphans) = side_by_side(
            warehouse.session, [partial(warehouse.replace_days, FACT_STREAM, written, days), partial(fact_key_outcomes, written, dims, days)]
        )
    finally:
        written.unpersist()
    fan_out = count_mismatch(by_day(warehouse.day_rows(LISTENS, days)), by_day(commit.day_rows), days)
    checks = [*NO_NULL_KEYS.day_results(nulls), *KEYS_IN_DIMENSIONS.day_results(orphans), *FAN_OUT.day_results(fan_out)]
    yield from gate(context, daily_report(context, commit, days, checks))


@table_asset(WIDE_FACT, checks=[WIDE_FACT_ROWS], upstream=[FACT_STREAM, *DIMENSIONS])
def wide_fact(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Event]:
    """The fact of the run's days with every dimension's attributes."""
    days = partition_dates(context)
    dims = [warehouse.read(t) for t in (DIM_USERS, DIM_SONGS, DIM_ARTISTS, DIM_LOCATION, DIM_DATETIME)]
    commit = warehouse.replace_days(WIDE_FACT, build_wide_fact(warehouse.read(FACT_STREAM, days), *dims), days)
    rows = count_mismatch(by_day(warehouse.day_rows(FACT_STREAM, days)), by_day(commit.day_rows), days)
    yield from gate(context, daily_report(context, commit, days, WIDE_FACT_ROWS.day_results(rows)))


def build_daily_summary(table: Table, summarise: Callable[[DataFrame], DataFrame]) -> AssetsDefinition:
    """A daily summary of wide_fact, whose streams add up to the fact's rows of each day."""
    check = STREAMS_MATCH_FACT[table]

    @table_asset(table, checks=[check], upstream=[WIDE_FACT])
    def summary(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Event]:
        days = partition_dates(context)
        rows = summarise(warehouse.read(WIDE_FACT, days))  # first: it starts the session the columns below need
        # each day's streams, summed by the job that writes them
        streams = {d.isoformat(): F.sum(F.when(F.col("date_part") == F.lit(d), F.col("total_streams"))) for d in days}
        commit = warehouse.replace_days(table, rows, days, observe=streams)
        outcomes = count_mismatch(
            by_day(warehouse.day_rows(FACT_STREAM, days)), {(d,): int(commit.observed[d.isoformat()] or 0) for d in days}, days
        )
        yield from gate(context, daily_report(context, commit, days, check.day_results(outcomes)))

    return summary


@table_asset(ARTIST_POPULARITY, checks=[STREAMS_MATCH_FACT[ARTIST_POPULARITY]], upstream=[WIDE_FACT])
def artist_popularity_asset(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Streams, listeners, songs and active days per artist over all time: the artists streamed on the
    run's days recomputed from all their streams, or every artist."""
    days = days_of_run(context.run.tags)
    if days is None or not warehouse.exists(ARTIST_POPULARITY):
        commit = warehouse.overwrite(ARTIST_POPULARITY, artist_popularity(warehouse.read(WIDE_FACT)))
        refresh = {"refresh": "full"}
    else:
        touched = warehouse.read(WIDE_FACT, days).select("artistName")
        rows = artist_popularity(of_groups(warehouse.read(WIDE_FACT), "artistName", touched))
        commit = warehouse.replace_groups(ARTIST_POPULARITY, rows, "artistName", touched)
        refresh = {"refresh": "days", "days": MetadataValue.json([d.isoformat() for d in days])}
    streams = warehouse.column_total(ARTIST_POPULARITY, "total_streams")  # one row per artist: read without Spark
    outcome = total_mismatch(warehouse.total_rows(FACT_STREAM), streams)
    return table_report(commit, [STREAMS_MATCH_FACT[ARTIST_POPULARITY].result(outcome)], refresh)


gold_assets = [
    fact_stream,
    wide_fact,
    build_daily_summary(DAILY_USER_SUMMARY, daily_user_summary),
    build_daily_summary(DAILY_LOCATION_SUMMARY, daily_location_summary),
    artist_popularity_asset,
]
