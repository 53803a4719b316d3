"""Silver dimensions: users (SCD2), locations, songs, artists and hours."""


from collections.abc import Callable

from dagster import AssetCheckResult, AssetExecutionContext, MaterializeResult, MetadataValue, asset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_assets.delta_io import commit_metadata, overwrite_table, read_table
from medallion_assets.expectations import drop_violations, expectations_for
from medallion_assets.integrity import current_rows, duplicate_keys, integrity_checks_for, songs_accounting, version_breaks
from medallion_assets.keys import UNKNOWN
from medallion_assets.partitions import daily_partitions
from medallion_assets.quality import expectation_results
from medallion_assets.reference import read_reference_csv, well_formed
from medallion_assets.resources.spark import SparkResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import table_asset_args
from medallion_assets.schemas import SONGS_CSV_COLUMNS, STATE_CODES_CSV_COLUMNS, TOPICS
from medallion_assets.silver.dim_datetime import build_dim_datetime
from medallion_assets.silver.dim_location import build_dim_location, locations
from medallion_assets.silver.dim_users import build_dim_users
from medallion_assets.silver.songs import artist_rows, build_dim_artists, build_dim_songs, song_rows
from medallion_assets.tables import BRONZE, DIM_ARTISTS, DIM_DATETIME, DIM_LOCATION, DIM_SONGS, DIM_USERS, Table


def _spec(table: Table) -> dict:
    """Asset arguments of a silver table, with its expectation and integrity checks."""
    return table_asset_args(
        table,
        check_specs=[rule.check_spec for rule in expectations_for(table)]
        + [c.check_spec for c in integrity_checks_for(table).values()],
    )


def integrity_results(table: Table, written: DataFrame) -> list[AssetCheckResult]:
    """Key uniqueness of every dimension, and the SCD2 invariants of dim_users."""
    checks = integrity_checks_for(table)
    results = [checks["unique_key"].result(duplicate_keys(written, table.key))]
    if table == DIM_USERS:
        results.append(checks["one_current_row_per_user"].result(current_rows(written)))
        results.append(checks["versions_contiguous"].result(version_breaks(written)))
    return results


def publish(
    session: SparkSession,
    warehouse: WarehouseResource,
    table: Table,
    build: Callable[[DataFrame], DataFrame],
    rows: DataFrame,
    extra: dict | None = None,
) -> tuple[MaterializeResult, dict[str, int]]:
    """Apply the drop expectations to `rows`, write `build(kept)`, report counts and checks; returns the tally too."""
    rows = rows.cache()
    try:
        kept, rejected = drop_violations(rows, table)
        tally = {r["reject_reason"]: r["count"] for r in rejected.groupBy("reject_reason").count().collect()}
        uri = warehouse.uri(table)
        overwrite_table(build(kept), uri)
        written = session.read.format("delta").load(uri)
        total = rows.count()
        checks = expectation_results(table, written, rejected, tally, total) + integrity_results(table, written)
    finally:
        rows.unpersist()
    metadata = {
        **commit_metadata(session, uri),
        "input_rows": total,
        "dropped_by_expectation": MetadataValue.json(tally),
        **(extra or {}),
    }
    return MaterializeResult(metadata=metadata, check_results=checks), tally


@asset(deps=[BRONZE[t].asset_key for t in TOPICS], **_spec(DIM_USERS))
def dim_users(spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
    """SCD2 users from every bronze event type."""
    session = spark.session
    bronze = [read_table(session, warehouse.uri(BRONZE[t]), BRONZE[t].path) for t in TOPICS]
    return publish(session, warehouse, DIM_USERS, lambda df: df, build_dim_users(bronze))[0]


@asset(deps=[BRONZE["listen_events"].asset_key], **_spec(DIM_LOCATION))
def dim_location(spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Locations of listens named by state."""
    session = spark.session
    listens = read_table(session, warehouse.uri(BRONZE["listen_events"]), BRONZE["listen_events"].path)
    states, _ = well_formed(read_reference_csv(session, warehouse.state_codes_uri, STATE_CODES_CSV_COLUMNS))
    return publish(
        session, warehouse, DIM_LOCATION, lambda kept: build_dim_location(kept, states), locations(listens)
    )[0]


def _songs(session: SparkSession, warehouse: WarehouseResource) -> tuple[DataFrame, int]:
    """Typed songs.csv rows and the number of lines that are not well-formed CSV."""
    good, bad = well_formed(read_reference_csv(session, warehouse.songs_uri, SONGS_CSV_COLUMNS))
    return song_rows(good), bad.count()


@asset(**_spec(DIM_SONGS))
def dim_songs(spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Songs of songs.csv."""
    session = spark.session
    songs, malformed = _songs(session, warehouse)
    result, dropped = publish(session, warehouse, DIM_SONGS, build_dim_songs, songs, {"malformed_csv_rows": malformed})
    kept = drop_violations(songs, DIM_SONGS)[0]
    counts = {
        "csv_records": songs.count() + malformed,
        "malformed_csv_rows": malformed,
        "dropped_by_expectation": sum(dropped.values()),
        "repeated_song_ids": kept.count() - kept.select("songId").distinct().count(),
        "dim_songs_rows": session.read.format("delta").load(warehouse.uri(DIM_SONGS)).where(F.col("songId") != UNKNOWN).count(),
    }
    reconciliation = integrity_checks_for(DIM_SONGS)["songs_reconciliation"].result(songs_accounting(**counts), **counts)
    return MaterializeResult(metadata=result.metadata, check_results=[*result.check_results, reconciliation])


@asset(**_spec(DIM_ARTISTS))
def dim_artists(spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Artists of songs.csv, one per cleaned name."""
    songs, malformed = _songs(spark.session, warehouse)
    return publish(
        spark.session, warehouse, DIM_ARTISTS, build_dim_artists, artist_rows(songs), {"malformed_csv_rows": malformed}
    )[0]


@asset(**_spec(DIM_DATETIME))
def dim_datetime(context: AssetExecutionContext, spark: SparkResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Hours from the first partition through the end of the current UTC day."""
    windows = daily_partitions.get_partition_keys()
    start = daily_partitions.time_window_for_partition_key(windows[0]).start
    end = daily_partitions.time_window_for_partition_key(windows[-1]).end
    context.log.info(f"dim_datetime covers {start} .. {end}")
    return publish(
        spark.session, warehouse, DIM_DATETIME, lambda df: df, build_dim_datetime(spark.session, start, end)
    )[0]


silver_assets = [dim_users, dim_location, dim_songs, dim_artists, dim_datetime]
