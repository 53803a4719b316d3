"""Check results with counts, fraction and a sample: for expectations and integrity checks alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.expectations import expectations_for
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


def check_result(
    table: Table,
    name: str,
    failed: int,
    total: int,
    failing: DataFrame | None,
    passed: bool | None = None,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    extra: Mapping[str, Any] | None = None,
) -> AssetCheckResult:
    """A check's result; it passes when nothing failed unless `passed` says otherwise."""
    metadata: dict[str, Any] = {
        "failed_rows": failed,
        "total_rows": total,
        "failed_fraction": MetadataValue.float(failed / total if total else 0.0),
        **(extra or {}),
    }
    if failed and failing is not None:
        metadata["sample"] = sample(failing)
    return AssetCheckResult(
        asset_key=table.asset_key,
        check_name=name,
        passed=failed == 0 if passed is None else passed,
        severity=severity,
        metadata=metadata,
        description=f"{failed} of {total} rows fail {name}",
    )


def expectation_results(
    table: Table, kept: DataFrame, rejected: DataFrame, dropped: Mapping[str, int], total: int
) -> list[AssetCheckResult]:
    """Results for every expectation of a table: drops from the tally (they pass), warn/fail counted on kept rows."""
    checked = expectations_for(table, "warn") + expectations_for(table, "fail")
    failures = {}
    if checked:
        row = kept.agg(*[F.sum((~rule.condition).cast("long")).alias(rule.name) for rule in checked]).collect()[0]
        failures = {rule.name: int(row[rule.name] or 0) for rule in checked}
    results = []
    for rule in expectations_for(table):
        if rule.action == "drop":
            failed, failing = dropped.get(rule.name, 0), rejected.where(F.col("reject_reason") == rule.name)
        else:
            failed, failing = failures[rule.name], kept.where(~rule.condition)
        results.append(
            check_result(
                table, rule.name, failed, total, failing,
                passed=rule.action == "drop" or failed == 0, severity=rule.severity, extra={"action": rule.action},
            )
        )
    return results
