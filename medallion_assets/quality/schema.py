"""column_schema_matches: every table's written columns are the ones tables.py declares.

A column added, removed or retyped without its declaration changing fails the check, as a
blocking ERROR: the write has happened, but nothing downstream reads the changed table in that
run. The schema compared is the written DataFrame's (known without a Spark job), or, for a step
that wrote nothing, the table's as its Delta log records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from dagster import AssetCheckEvaluation, AssetCheckResult, TableSchema

from medallion_assets.quality.checks import Check, Outcome
from medallion_assets.resources.warehouse import Commit
from medallion_assets.tables import ALL_TABLES, Table

COLUMN_SCHEMA: dict[Table, Check] = {
    table: Check(
        table,
        "column_schema_matches",
        "the columns written are the declared ones, by name and Spark SQL type (none added, removed or retyped)",
        unit="columns",
    )
    for table in ALL_TABLES
}


def schema_differences(table: Table, written: TableSchema) -> list[dict[str, str | None]]:
    """Each column whose declared and written types differ (None: the column is not on that side)."""
    declared = {c.name: c.type for c in table.columns}
    found = {c.name: c.type for c in written.columns}
    names = [*declared, *(n for n in found if n not in declared)]
    return [
        {"column": n, "declared": declared.get(n), "written": found.get(n)}
        for n in names
        if declared.get(n) != found.get(n)
    ]


def schema_outcome(table: Table, written: TableSchema) -> Outcome:
    """How many of the declared and written columns differ, and how."""
    differences = schema_differences(table, written)
    total = len({c.name for c in table.columns} | {c.name for c in written.columns})
    return Outcome(len(differences), total, differences or None)


def schema_results(commit: Commit) -> list[AssetCheckResult]:
    """column_schema_matches of an undivided table on what the write wrote (none when there is no table)."""
    if commit.schema is None:
        return []
    return [COLUMN_SCHEMA[commit.table].result(schema_outcome(commit.table, commit.schema))]


def schema_day_results(commit: Commit, days: Sequence[date]) -> list[AssetCheckEvaluation]:
    """column_schema_matches of a daily table, one evaluation per day the write covered."""
    if commit.schema is None:
        return []
    outcome = schema_outcome(commit.table, commit.schema)
    return COLUMN_SCHEMA[commit.table].day_results(dict.fromkeys(days, outcome))
