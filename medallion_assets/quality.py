"""Expectation results as Dagster asset check results, with counts, fraction and a sample."""

from __future__ import annotations

import json
from collections.abc import Mapping

from dagster import AssetCheckResult, MetadataValue
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.expectations import Expectation, expectations_for
from medallion_assets.tables import Table

SAMPLE_ROWS = 5
SAMPLE_VALUE_CHARS = 200


def sample(df: DataFrame) -> MetadataValue:
    """Up to five rows as JSON, long values cut."""
    rows = [
        {k: (str(v)[:SAMPLE_VALUE_CHARS] if v is not None else None) for k, v in row.asDict().items()}
        for row in df.limit(SAMPLE_ROWS).collect()
    ]
    return MetadataValue.json(json.loads(json.dumps(rows, default=str)))


def check_result(rule: Expectation, failed: int, total: int, failing: DataFrame) -> AssetCheckResult:
    """One expectation's result: drop rules pass (the rows were removed), others pass only with no failures."""
    metadata = {
        "failed_rows": failed,
        "total_rows": total,
        "failed_fraction": MetadataValue.float(failed / total if total else 0.0),
        "action": rule.action,
    }
    if failed:
        metadata["sample"] = sample(failing)
    return AssetCheckResult(
        asset_key=rule.table.asset_key,
        check_name=rule.name,
        passed=rule.action == "drop" or failed == 0,
        severity=rule.severity,
        metadata=metadata,
    )


def expectation_results(
    table: Table, kept: DataFrame, rejected: DataFrame, dropped: Mapping[str, int], total: int
) -> list[AssetCheckResult]:
    """Results for every expectation of a table: drops from the tally, warn/fail counted on the kept rows."""
    checked = expectations_for(table, "warn") + expectations_for(table, "fail")
    failures = {}
    if checked:
        row = kept.agg(*[F.sum((~rule.condition).cast("long")).alias(rule.name) for rule in checked]).collect()[0]
        failures = {rule.name: int(row[rule.name] or 0) for rule in checked}
    results = []
    for rule in expectations_for(table):
        if rule.action == "drop":
            failing = rejected.where(F.col("reject_reason") == rule.name)
            results.append(check_result(rule, dropped.get(rule.name, 0), total, failing))
        else:
            results.append(check_result(rule, failures[rule.name], total, kept.where(~rule.condition)))
    return results
