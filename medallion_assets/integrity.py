"""Integrity checks beyond the expectations: keys, SCD2 invariants, fan-out and reconciliation.

Each function takes DataFrames and returns an Outcome (failed, total, failing rows), so tests
can call it directly; the assets turn outcomes into blocking asset check results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dagster import AssetCheckSeverity, AssetCheckSpec
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion_assets.keys import OPEN_END_TS
from medallion_assets.quality import check_result
from medallion_assets.tables import DIM_SONGS, DIM_USERS, DIMENSIONS, FACT_STREAM, QUARANTINE, RAW, Table


@dataclass(frozen=True)
class Outcome:
    """How many of how many rows (or groups) failed, and which."""

    failed: int
    total: int
    failing: DataFrame | None = None


@dataclass(frozen=True)
class IntegrityCheck:
    """A named invariant of a table; blocking unless it only warns."""

    table: Table
    name: str
    description: str
    blocking: bool = True

    @property
    def check_spec(self) -> AssetCheckSpec:
        """The Dagster check declared on the table's asset."""
        return AssetCheckSpec(self.name, asset=self.table.asset_key, description=self.description, blocking=self.blocking)

    def result(self, outcome: Outcome, **extra):
        """The check result of an outcome: ERROR when blocking, WARN otherwise."""
        severity = AssetCheckSeverity.ERROR if self.blocking else AssetCheckSeverity.WARN
        return check_result(self.table, self.name, outcome.failed, outcome.total, outcome.failing, severity=severity, extra=extra)


INTEGRITY_CHECKS: tuple[IntegrityCheck, ...] = (
    *(IntegrityCheck(d, "unique_key", f"{', '.join(d.key)} is unique and not null") for d in DIMENSIONS),
    IntegrityCheck(DIM_USERS, "one_current_row_per_user", "exactly one current_row per userId"),
    IntegrityCheck(DIM_USERS, "versions_contiguous", "a user's versions neither overlap nor leave a gap"),
    IntegrityCheck(DIM_SONGS, "songs_reconciliation", "songs.csv rows = dim_songs rows + rejected rows"),
    IntegrityCheck(FACT_STREAM, "no_null_keys", "no fact key is null"),
    IntegrityCheck(FACT_STREAM, "keys_in_dimensions", "every fact key is found in its dimension"),
    IntegrityCheck(FACT_STREAM, "fan_out", "fact rows = bronze listens, per day"),
    IntegrityCheck(QUARANTINE, "reconciliation", "raw records = bronze rows + quarantined rows, per day and topic"),
    *(
        IntegrityCheck(t, "records_outside_partitions", "records without a day or outside the partitions", blocking=False)
        for t in RAW.values()
    ),
)


def integrity_checks_for(table: Table) -> dict[str, IntegrityCheck]:
    """A table's integrity checks by name."""
    return {c.name: c for c in INTEGRITY_CHECKS if c.table == table}


def duplicate_keys(df: DataFrame, key: Sequence[str]) -> Outcome:
    """Rows whose key is null or shared with another row."""
    groups = df.groupBy(*key).count()
    null_key = F.greatest(*[F.col(k).isNull() for k in key]) if len(key) > 1 else F.col(key[0]).isNull()
    failing = groups.where((F.col("count") > 1) | null_key)
    failed = failing.agg(F.sum("count")).collect()[0][0] or 0
    return Outcome(int(failed), df.count(), failing)


def current_rows(dim_users: DataFrame) -> Outcome:
    """Users with other than one current row."""
    per_user = dim_users.groupBy("userId").agg(F.sum(F.col("current_row").cast("int")).alias("current_rows"))
    failing = per_user.where("current_rows <> 1")
    return Outcome(failing.count(), per_user.count(), failing)


def version_breaks(dim_users: DataFrame) -> Outcome:
    """Versions that do not end where the next begins, or a last version that is not open-ended."""
    by_start = Window.partitionBy("userId").orderBy("row_activation_ts")
    nxt = F.lead("row_activation_ts").over(by_start)
    checked = dim_users.withColumn("next_activation_ts", nxt)
    failing = checked.where(
        (F.col("row_activation_ts") >= F.col("row_expiration_ts"))
        | (F.col("next_activation_ts").isNotNull() & (F.col("next_activation_ts") != F.col("row_expiration_ts")))
        | (F.col("next_activation_ts").isNull() & (F.col("row_expiration_ts") != F.to_timestamp(F.lit(OPEN_END_TS))))
    )
    return Outcome(failing.count(), dim_users.count(), failing)


def null_keys(fact: DataFrame, keys: Sequence[str]) -> Outcome:
    """Fact rows with any null key."""
    failing = fact.where(F.greatest(*[F.col(k).isNull() for k in keys]))
    return Outcome(failing.count(), fact.count(), failing)


def orphan_keys(fact: DataFrame, dims: Mapping[str, DataFrame]) -> Outcome:
    """Fact rows whose key (per fact column) is missing from its dimension."""
    orphans = [
        fact.join(dim.select(key).distinct(), key, "left_anti").select(F.lit(key).alias("key"), F.col(key).cast("string").alias("value"))
        for key, dim in dims.items()
    ]
    failing = orphans[0]
    for more in orphans[1:]:
        failing = failing.unionByName(more)
    return Outcome(failing.count(), fact.count(), failing)


def count_mismatch(expected: DataFrame, actual: DataFrame, by: Sequence[str]) -> Outcome:
    """Groups whose `count` differs between two per-group tallies (a missing group counts 0)."""
    joined = expected.withColumnRenamed("count", "expected").join(
        actual.withColumnRenamed("count", "actual"), list(by), "full_outer"
    ).fillna(0, ["expected", "actual"])
    failing = joined.where("expected <> actual")
    total = int(joined.agg(F.sum("expected")).collect()[0][0] or 0)
    failed = int(failing.agg(F.sum(F.abs(F.col("expected") - F.col("actual")))).collect()[0][0] or 0)
    return Outcome(failed, total, failing)


def songs_accounting(
    csv_records: int, malformed_csv_rows: int, dropped_by_expectation: int, repeated_song_ids: int, dim_songs_rows: int
) -> Outcome:
    """songs.csv records that are neither a dim_songs row nor rejected for a counted reason."""
    accounted = dim_songs_rows + malformed_csv_rows + dropped_by_expectation + repeated_song_ids
    return Outcome(abs(csv_records - accounted), csv_records)
