"""Integrity checks beyond the expectations: keys, SCD2 invariants, fan-out and reconciliation.

Each check is declared here on the table it guards, next to the function that measures it; a
measure takes DataFrames or counts and returns an Outcome (or one per day), so tests can call
it directly and the assets turn it into check results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion_assets.keys import OPEN_END_TS
from medallion_assets.quality.checks import Check, Outcome, sample, samples_by
from medallion_assets.tables import (
    ARTIST_POPULARITY,
    DAILY_LOCATION_SUMMARY,
    DAILY_USER_SUMMARY,
    DIM_SONGS,
    DIM_USERS,
    DIMENSIONS,
    FACT_STREAM,
    QUARANTINE,
    RAW,
    WIDE_FACT,
    Table,
)

UNIQUE_KEY: dict[Table, Check] = {d: Check(d, "unique_key", f"{', '.join(d.key)} is unique and not null") for d in DIMENSIONS}
ONE_CURRENT_ROW = Check(DIM_USERS, "one_current_row_per_user", "exactly one current_row per userId")
VERSIONS_CONTIGUOUS = Check(DIM_USERS, "versions_contiguous", "a user's versions neither overlap nor leave a gap")
SONGS_RECONCILIATION = Check(DIM_SONGS, "songs_reconciliation", "songs.csv rows = dim_songs rows + rejected rows")
NO_NULL_KEYS = Check(FACT_STREAM, "no_null_keys", "no fact key is null")
KEYS_IN_DIMENSIONS = Check(FACT_STREAM, "keys_in_dimensions", "every fact key is found in its dimension")
FAN_OUT = Check(FACT_STREAM, "fan_out", "fact rows = bronze listens of the day")
RECONCILIATION = Check(QUARANTINE, "reconciliation", "raw records = bronze rows + quarantined rows, per topic, of the day")
RECORDS_OUTSIDE_PARTITIONS: dict[str, Check] = {
    topic: Check(table, "records_outside_partitions", "records without a day or outside the partitions", blocking=False)
    for topic, table in RAW.items()
}
WIDE_FACT_ROWS = Check(WIDE_FACT, "rows_match_fact", "wide_fact rows = fact_stream rows of the day")
STREAMS_MATCH_FACT: dict[Table, Check] = {
    DAILY_USER_SUMMARY: Check(DAILY_USER_SUMMARY, "streams_match_fact", "sum(total_streams) = fact_stream rows of the day"),
    DAILY_LOCATION_SUMMARY: Check(
        DAILY_LOCATION_SUMMARY, "streams_match_fact", "sum(total_streams) = fact_stream rows of the day"
    ),
    ARTIST_POPULARITY: Check(ARTIST_POPULARITY, "streams_match_fact", "sum(total_streams) = all fact_stream rows"),
}


def duplicate_keys(df: DataFrame, key: Sequence[str]) -> Outcome:
    """Rows whose key is null or shared with another row."""
    null_key = reduce(lambda a, b: a | b, [F.col(k).isNull() for k in key])
    groups = df.groupBy(*key).count().withColumn("_bad", (F.col("count") > 1) | null_key)
    row = groups.agg(F.sum("count").alias("total"), F.sum(F.when(F.col("_bad"), F.col("count"))).alias("failed")).collect()[0]
    failed = int(row["failed"] or 0)
    return Outcome(failed, int(row["total"] or 0), sample(groups.where("_bad").drop("_bad")) if failed else None)


def current_rows(dim_users: DataFrame) -> Outcome:
    """Users with other than one current row."""
    per_user = dim_users.groupBy("userId").agg(F.sum(F.col("current_row").cast("int")).alias("current_rows"))
    row = per_user.agg(F.count(F.lit(1)).alias("total"), F.sum((F.col("current_rows") != 1).cast("int")).alias("failed")).collect()[0]
    failed = int(row["failed"] or 0)
    return Outcome(failed, int(row["total"] or 0), sample(per_user.where("current_rows <> 1")) if failed else None)


def version_breaks(dim_users: DataFrame) -> Outcome:
    """Versions that do not end where the next begins, or a last version that is not open-ended."""
    nxt = F.lead("row_activation_ts").over(Window.partitionBy("userId").orderBy("row_activation_ts"))
    checked = dim_users.withColumn("next_activation_ts", nxt).withColumn(
        "_bad",
        (F.col("row_activation_ts") >= F.col("row_expiration_ts"))
        | (F.col("next_activation_ts").isNotNull() & (F.col("next_activation_ts") != F.col("row_expiration_ts")))
        | (F.col("next_activation_ts").isNull() & (F.col("row_expiration_ts") != F.to_timestamp(F.lit(OPEN_END_TS)))),
    )
    row = checked.agg(F.count(F.lit(1)).alias("total"), F.sum(F.col("_bad").cast("int")).alias("failed")).collect()[0]
    failed = int(row["failed"] or 0)
    return Outcome(failed, int(row["total"] or 0), sample(checked.where("_bad").drop("_bad")) if failed else None)


def fact_key_outcomes(
    fact: DataFrame, dims: Mapping[str, DataFrame], days: Sequence[date]
) -> tuple[dict[date, Outcome], dict[date, Outcome]]:
    """Per day: fact rows with a null key, and (row, key) pairs whose key is missing from its dimension."""
    keys = list(dims)
    flagged = fact.select("date_part", *keys)
    for key, dim in dims.items():
        present = dim.select(F.col(key).alias(f"_in_{key}")).distinct()
        flagged = flagged.join(F.broadcast(present), F.col(key) == F.col(f"_in_{key}"), "left")
    any_null = reduce(lambda a, b: a | b, [F.col(k).isNull() for k in keys])
    missing = reduce(lambda a, b: a + b, [F.col(f"_in_{k}").isNull().cast("int") for k in keys])
    counts = {
        r["date_part"]: r
        for r in flagged.groupBy("date_part")
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(any_null.cast("int")).alias("nulls"), F.sum(missing).alias("missing"))
        .collect()
    }
    nulls = {d: int(r["nulls"]) for d, r in counts.items() if r["nulls"]}
    orphans = {d: int(r["missing"]) for d, r in counts.items() if r["missing"]}
    null_samples = samples_by(flagged.where(any_null).select("date_part", *keys), ["date_part"]) if nulls else {}
    orphan_samples = {}
    if orphans:  # one row per (row, missing key), as the sample shows it
        orphan_rows = reduce(
            DataFrame.unionByName,
            [
                flagged.where(F.col(f"_in_{k}").isNull()).select("date_part", F.lit(k).alias("key"), F.col(k).cast("string").alias("value"))
                for k in keys
            ],
        )
        orphan_samples = samples_by(orphan_rows, ["date_part"])
    totals = {d: int(r["rows"]) for d, r in counts.items()}
    return (
        {d: Outcome(nulls.get(d, 0), totals.get(d, 0), null_samples.get((d,))) for d in days},
        {d: Outcome(orphans.get(d, 0), totals.get(d, 0), orphan_samples.get((d,))) for d in days},
    )


def count_mismatch(
    expected: Mapping[tuple, int], actual: Mapping[tuple, int], days: Sequence[date]
) -> dict[date, Outcome]:
    """Per day, how far per-group counts (keys (day, *group)) differ; the groups that differ as the sample."""
    outcomes = {}
    for day in days:
        groups = sorted({k for k in (*expected, *actual) if k[0] == day}, key=str)
        differing = [
            {"group": "/".join(map(str, k[1:])) or day.isoformat(), "expected": expected.get(k, 0), "actual": actual.get(k, 0)}
            for k in groups
            if expected.get(k, 0) != actual.get(k, 0)
        ]
        failed = sum(abs(d["expected"] - d["actual"]) for d in differing)
        outcomes[day] = Outcome(failed, sum(expected.get(k, 0) for k in groups), differing or None)
    return outcomes


def total_mismatch(expected: int, actual: int) -> Outcome:
    """How far an all-time total differs from what it should be."""
    differs = expected != actual
    return Outcome(abs(expected - actual), expected, [{"expected": expected, "actual": actual}] if differs else None)


def songs_accounting(
    csv_records: int, malformed_csv_rows: int, dropped_by_expectation: int, repeated_song_ids: int, dim_songs_rows: int
) -> Outcome:
    """songs.csv records that are neither a dim_songs row nor rejected for a counted reason."""
    accounted = dim_songs_rows + malformed_csv_rows + dropped_by_expectation + repeated_song_ids
    return Outcome(abs(csv_records - accounted), csv_records)
