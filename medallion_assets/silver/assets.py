"""Silver dimensions: users (SCD2), locations, songs, artists and hours."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from dagster import AssetCheckResult, AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue, SourceAsset
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.orchestration.partitions import STALE_FACT_DAYS, daily_partitions, days_of_run
from medallion_assets.quality.checks import Check, Outcome, samples_by
from medallion_assets.quality.expectations import expectations_for, first_violation, rule_outcomes
from medallion_assets.quality.integrity import (
    ONE_CURRENT_ROW,
    SONGS_RECONCILIATION,
    UNIQUE_KEY,
    VERSIONS_CONTIGUOUS,
    current_rows,
    duplicate_keys,
    songs_accounting,
    version_breaks,
)
from medallion_assets.reference import read_reference_csv, well_formed
from medallion_assets.resources.spark import side_by_side
from medallion_assets.resources.warehouse import Commit, WarehouseResource, of_groups
from medallion_assets.runtime import table_asset, table_report, table_spec, tables_asset
from medallion_assets.schemas import SONGS_CSV_COLUMNS, STATE_CODES_CSV_COLUMNS, TOPICS
from medallion_assets.sources import SONGS_CSV, STATE_CODES_CSV
from medallion_assets.silver.dim_datetime import build_dim_datetime
from medallion_assets.silver.dim_location import KEY, build_dim_location, location_upserts, locations
from medallion_assets.silver.dim_users import build_dim_users, days_in_spans, first_seen, moved_spans, replayed, user_observations, versions_of
from medallion_assets.silver.songs import artist_rows, build_dim_artists, build_dim_songs, song_rows
from medallion_assets.tables import BRONZE, DIM_ARTISTS, DIM_DATETIME, DIM_LOCATION, DIM_SONGS, DIM_USERS, Table

LISTENS = BRONZE["listen_events"]
# Checks beyond the expectations and key uniqueness, per dimension.
EXTRA_CHECKS: dict[Table, tuple[Check, ...]] = {DIM_USERS: (ONE_CURRENT_ROW, VERSIONS_CONTIGUOUS), DIM_SONGS: (SONGS_RECONCILIATION,)}


def dimension_checks(table: Table) -> list[Check]:
    """Every check of a dimension: its expectations, key uniqueness, and its own invariants."""
    return [*(rule.check for rule in expectations_for(table)), UNIQUE_KEY[table], *EXTRA_CHECKS.get(table, ())]


def dimension_asset(table: Table, *upstream: Table, sources: Sequence[SourceAsset] = ()) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """The decorator of a dimension's asset, with all its checks, downstream of tables and reference files."""
    return table_asset(table, checks=dimension_checks(table), upstream=upstream, sources=[s.key for s in sources])


@dataclass(frozen=True)
class Published:
    """A dimension written whole: the commit, input rows by reject reason, and the check results so far."""

    commit: Commit
    tally: dict[str | None, int]
    checks: list[AssetCheckResult]

    def result(self, *more_checks: AssetCheckResult, **metadata: Any) -> MaterializeResult:
        """The materialization with every check result."""
        dropped = {k: v for k, v in self.tally.items() if k is not None}
        return table_report(
            self.commit,
            [*self.checks, *more_checks],
            {"input_rows": sum(self.tally.values()), "dropped_by_expectation": MetadataValue.json(dropped), **metadata},
        )


def invariants(table: Table, written: DataFrame) -> list[tuple[Check, Callable[[], Outcome]]]:
    """Key uniqueness of every dimension, and the SCD2 invariants of dim_users: each check with its measure."""
    measures = [(UNIQUE_KEY[table], partial(duplicate_keys, written, table.key))]
    if table == DIM_USERS:
        measures += [(ONE_CURRENT_ROW, partial(current_rows, written)), (VERSIONS_CONTIGUOUS, partial(version_breaks, written))]
    return measures


def publish(
    warehouse: WarehouseResource,
    table: Table,
    rows: DataFrame,
    build: Callable[[DataFrame], DataFrame] = lambda kept: kept,
    merge: Callable[[DataFrame], Commit] | None = None,
) -> Published:
    """Apply the drop expectations to `rows`, then overwrite the table with `build(kept)` (or hand the kept
    rows to `merge`), and evaluate the table's checks on what it now holds."""
    tagged = rows.withColumn("reject_reason", first_violation(expectations_for(table, "drop"))).cache()
    written: DataFrame | None = None

    def write() -> tuple[Commit, DataFrame]:
        """The commit, and the rows the checks read: the cached rows an overwrite wrote, or the merged table."""
        nonlocal written
        kept = tagged.where(F.col("reject_reason").isNull()).drop("reject_reason")
        if merge is None:
            written = build(kept).cache()
            return warehouse.overwrite(table, written), written
        return merge(kept), warehouse.read(table)

    try:
        # the tally of reject reasons and the write both read the tagged rows: the first to need them caches them
        counted, (commit, checked) = side_by_side(warehouse.session, [tagged.groupBy("reject_reason").count().collect, write])
        tally = {r["reject_reason"]: r["count"] for r in counted}
        total = sum(tally.values())
        failing = [e.name for e in expectations_for(table, "drop") if not e.check.passed(Outcome(tally.get(e.name, 0), total))]
        samples = (
            {k[0]: v for k, v in samples_by(tagged.where(F.col("reject_reason").isin(failing)), ["reject_reason"]).items()}
            if failing
            else {}
        )
        # the expectations and the invariants are separate small queries: they run side by side
        measures = invariants(table, checked)
        outcomes, *measured = side_by_side(
            warehouse.session, [partial(rule_outcomes, table, checked, tally, samples), *(measure for _, measure in measures)]
        )
        checks = [rule.check.result(o) for rule, o in outcomes.items()]
        checks += [check.result(o) for (check, _), o in zip(measures, measured)]
    finally:
        tagged.unpersist()
        if written is not None:
            written.unpersist()
    return Published(commit, tally, checks)


def dim_users(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """SCD2 users: those seen on the run's days replayed from their versions and their events since, or all rebuilt.

    A user seen on the run's days keeps the versions that start before their first event there
    (`replayed`), and has the rest rebuilt from their events from then on, so a batch reads the days
    from the run's first on, not each user's whole history. Late data can split or move a version:
    the days whose listens now fall in another version are reported as `stale_fact_days`, and
    raw_to_gold_sensor rebuilds them.
    """
    days = days_of_run(context.run.tags)
    if days is None or not warehouse.exists(DIM_USERS):
        bronze = [warehouse.read(BRONZE[t]) for t in TOPICS]
        return publish(warehouse, DIM_USERS, build_dim_users(bronze)).result(refresh="full")
    recent_days = {t: warehouse.days_from(BRONZE[t], days[0]) for t in TOPICS}
    recent = {t: warehouse.read(BRONZE[t], recent_days[t]) for t in TOPICS}
    # only listens on days the run does not rebuild can be stale; a batch of the newest days has none to look at
    later = [d for d in recent_days[LISTENS.name] if d not in days]
    since = first_seen([df.where(F.col("event_date").isin(days)) for df in recent.values()]).cache()
    before = of_groups(warehouse.read(DIM_USERS), "userId", since)
    versions = versions_of(replayed(before, since, user_observations(list(recent.values()))))
    if later:  # read twice: by the stale-day look and by the write (which caches its own tagged copy)
        versions = versions.cache()
    try:
        stale = sorted(days_in_spans(warehouse.read(LISTENS, later), moved_spans(before, versions))) if later else []
        merge = lambda kept: warehouse.replace_groups(DIM_USERS, kept, "userId", since)  # noqa: E731
        published = publish(warehouse, DIM_USERS, versions, merge=merge)
    finally:
        since.unpersist()
        versions.unpersist()
    return published.result(
        refresh="days",
        days=MetadataValue.json([d.isoformat() for d in days]),
        **{STALE_FACT_DAYS: MetadataValue.json([d.isoformat() for d in stale])},
    )


def dim_location(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Locations of listens named by state: merged from the run's days, or rebuilt from every day."""
    states, _ = well_formed(read_reference_csv(warehouse.session, warehouse.state_codes_uri, STATE_CODES_CSV_COLUMNS))
    days = days_of_run(context.run.tags)
    if days is None or not warehouse.exists(DIM_LOCATION):
        build = lambda kept: build_dim_location(kept, states)  # noqa: E731
        return publish(warehouse, DIM_LOCATION, locations(warehouse.read(LISTENS)), build).result(refresh="full")
    dim = warehouse.read(DIM_LOCATION)
    merge = lambda kept: warehouse.merge(  # noqa: E731
        DIM_LOCATION, location_upserts(kept, dim, states), KEY, update_if_changed=("latitude", "longitude")
    )
    published = publish(warehouse, DIM_LOCATION, locations(warehouse.read(LISTENS, days)), merge=merge)
    return published.result(refresh="days", days=MetadataValue.json([d.isoformat() for d in days]))


# The dimensions that follow the days of events, each computed from its own inputs.
OF_EVENTS: dict[Table, Callable[[AssetExecutionContext, WarehouseResource], MaterializeResult]] = {
    DIM_USERS: dim_users,
    DIM_LOCATION: dim_location,
}


@tables_asset(
    "silver_of_events",
    [table_spec(DIM_USERS, list(BRONZE.values())), table_spec(DIM_LOCATION, [LISTENS], sources=[STATE_CODES_CSV.key])],
    checks=[c for table in OF_EVENTS for c in dimension_checks(table)],
)
def dimensions_of_events(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[MaterializeResult]:
    """dim_users and dim_location (those selected), side by side on the run's session: a batch's small
    MERGEs are mostly driver time, and Dagster runs a run's steps one at a time."""
    chosen = [build for table, build in OF_EVENTS.items() if table.asset_key in context.selected_asset_keys]
    for result in side_by_side(warehouse.session, [partial(build, context, warehouse) for build in chosen]):
        stale = (result.metadata or {}).get(STALE_FACT_DAYS)
        if stale is not None and stale.value:  # logged here: the step's own thread reports
            context.log.info(f"{len(stale.value)} day(s) hold listens keyed to replaced versions: {stale.value[0]} .. {stale.value[-1]}")
        yield result


def _songs(warehouse: WarehouseResource) -> tuple[DataFrame, int]:
    """Typed songs.csv rows and the number of lines that are not well-formed CSV."""
    good, bad = well_formed(read_reference_csv(warehouse.session, warehouse.songs_uri, SONGS_CSV_COLUMNS))
    return song_rows(good), bad.count()


@dimension_asset(DIM_SONGS, sources=[SONGS_CSV])
def dim_songs(warehouse: WarehouseResource) -> MaterializeResult:
    """Songs of songs.csv."""
    songs, malformed = _songs(warehouse)
    published = publish(warehouse, DIM_SONGS, songs, build_dim_songs)
    kept_rows = published.tally.get(None, 0)
    kept_ids = songs.where(first_violation(expectations_for(DIM_SONGS, "drop")).isNull()).select("songId").distinct().count()
    counts = {
        "csv_records": sum(published.tally.values()) + malformed,
        "malformed_csv_rows": malformed,
        "dropped_by_expectation": sum(n for reason, n in published.tally.items() if reason is not None),
        "repeated_song_ids": kept_rows - kept_ids,
        "dim_songs_rows": published.commit.total_rows - 1,  # from the Delta log, less the unknown member
    }
    return published.result(SONGS_RECONCILIATION.result(songs_accounting(**counts), **counts), malformed_csv_rows=malformed)


@dimension_asset(DIM_ARTISTS, sources=[SONGS_CSV])
def dim_artists(warehouse: WarehouseResource) -> MaterializeResult:
    """Artists of songs.csv, one per cleaned name."""
    songs, malformed = _songs(warehouse)
    return publish(warehouse, DIM_ARTISTS, artist_rows(songs), build_dim_artists).result(malformed_csv_rows=malformed)


@dimension_asset(DIM_DATETIME)
def dim_datetime(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Hours from the first partition through the end of the current UTC day."""
    windows = daily_partitions.get_partition_keys()
    start = daily_partitions.time_window_for_partition_key(windows[0]).start
    end = daily_partitions.time_window_for_partition_key(windows[-1]).end
    context.log.info(f"dim_datetime covers {start} .. {end}")
    return publish(warehouse, DIM_DATETIME, build_dim_datetime(warehouse.session, start, end)).result()


silver_assets = [dimensions_of_events, dim_songs, dim_artists, dim_datetime]
