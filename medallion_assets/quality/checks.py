"""A data-quality check: declared once on the table it guards, and turned here into its Dagster
spec and its results, per day partition for daily tables.

Every result carries `failed_rows`, `total_rows`, a float `failed_fraction` and, when it fails,
a sample of the failing rows (a check that counts columns says `failed_columns`, `total_columns`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    PreviewWarning,
)
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion_assets.orchestration.partitions import daily_partitions
from medallion_assets.tables import Table

SAMPLE_ROWS = 5
SAMPLE_VALUE_CHARS = 200


@dataclass(frozen=True)
class Outcome:
    """How many of how many rows (or groups) failed, and a sample of the failing ones."""

    failed: int
    total: int
    sample: list[dict[str, Any]] | None = None

    @property
    def fraction(self) -> float:
        """Failed share of the total (0 when there is nothing)."""
        return self.failed / self.total if self.total else 0.0


def sample_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, long values cut."""
    return [{k: (str(v)[:SAMPLE_VALUE_CHARS] if v is not None else None) for k, v in row.items()} for row in rows[:SAMPLE_ROWS]]


def sample(df: DataFrame) -> list[dict[str, Any]]:
    """Up to five rows of a DataFrame (one small Spark job)."""
    return sample_rows([row.asDict() for row in df.limit(SAMPLE_ROWS).collect()])


def samples_by(df: DataFrame, keys: Sequence[str]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """Up to five rows per group of `keys`, for every group at once (one Spark job)."""
    order = [c for c in ("kafka_partition", "kafka_offset") if c in df.columns] or list(keys)
    ranked = df.withColumn("_n", F.row_number().over(Window.partitionBy(*keys).orderBy(*order)))
    grouped: dict[tuple[Any, ...], list[Any]] = {}
    for row in ranked.where(F.col("_n") <= SAMPLE_ROWS).drop("_n").collect():
        grouped.setdefault(tuple(row[k] for k in keys), []).append(row)
    return {key: sample_rows([row.asDict() for row in rows]) for key, rows in grouped.items()}


@dataclass(frozen=True)
class Check:
    """A named rule on one table, evaluated per day partition when the table is daily.

    It fails when the failed fraction exceeds `tolerance`; a failure is an ERROR that blocks
    downstream assets when `blocking`, a WARN otherwise. It counts rows, or the `unit` it names.
    """

    table: Table
    name: str
    description: str
    blocking: bool = True
    tolerance: float = 0.0
    unit: str = "rows"

    @property
    def per_day(self) -> bool:
        """Whether the check is evaluated once per day partition."""
        return self.table.partition_column is not None and self.table.layer != "raw"

    @property
    def severity(self) -> AssetCheckSeverity:
        """ERROR for a blocking check, WARN otherwise."""
        return AssetCheckSeverity.ERROR if self.blocking else AssetCheckSeverity.WARN

    @property
    def spec(self) -> AssetCheckSpec:
        """The Dagster asset check, partitioned like its table."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PreviewWarning)  # partitioned checks are a preview feature
            return AssetCheckSpec(
                self.name,
                asset=self.table.asset_key,
                description=self.description,
                blocking=self.blocking,
                partitions_def=daily_partitions if self.per_day else None,
            )

    def passed(self, outcome: Outcome) -> bool:
        """Whether the failed fraction is within the tolerance."""
        return outcome.failed == 0 or outcome.fraction <= self.tolerance

    def _metadata(self, outcome: Outcome, extra: Mapping[str, Any]) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            f"failed_{self.unit}": outcome.failed,
            f"total_{self.unit}": outcome.total,
            "failed_fraction": MetadataValue.float(outcome.fraction),
            **({"tolerated_fraction": MetadataValue.float(self.tolerance)} if self.tolerance else {}),
            **extra,
        }
        if outcome.failed and outcome.sample:
            metadata["sample"] = MetadataValue.json(json.loads(json.dumps(outcome.sample, default=str)))
        return metadata

    def _description(self, outcome: Outcome, day: date | None) -> str:
        where = f" on {day.isoformat()}" if day else ""
        text = f"{outcome.failed} of {outcome.total} {self.unit} fail {self.name}{where}"
        if outcome.failed and not self.passed(outcome) and self.tolerance:
            text += f" ({outcome.fraction:.1%}, above the tolerated {self.tolerance:.1%})"
        return text

    def result(self, outcome: Outcome, **extra: Any) -> AssetCheckResult:
        """The result of a check on an undivided table."""
        return AssetCheckResult(
            asset_key=self.table.asset_key,
            check_name=self.name,
            passed=self.passed(outcome),
            severity=self.severity,
            metadata=self._metadata(outcome, extra),
            description=self._description(outcome, None),
        )

    def day_results(
        self, outcomes: Mapping[date, Outcome], extra: Mapping[date, Mapping[str, Any]] | None = None
    ) -> list[AssetCheckEvaluation]:
        """One evaluation per day partition, each with that day's own counts."""
        return [
            AssetCheckEvaluation(
                asset_key=self.table.asset_key,
                check_name=self.name,
                passed=self.passed(outcome),
                severity=self.severity,
                metadata=self._metadata(outcome, (extra or {}).get(day, {})),
                description=self._description(outcome, day),
                blocking=self.blocking,
                partition=day.isoformat(),
            )
            for day, outcome in sorted(outcomes.items())
        ]
