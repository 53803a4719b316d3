"""Helpers shared by the assets: the asset arguments of a table, the days a run covers, and its report."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    BetaWarning,
    MaterializeResult,
    multi_asset,
)

from medallion_assets.orchestration.freshness import freshness_policy
from medallion_assets.orchestration.partitions import daily_partitions
from medallion_assets.quality.checks import Check
from medallion_assets.resources.warehouse import Commit
from medallion_assets.tables import Table


def table_spec(table: Table, deps: Sequence[AssetKey] = (), description: str | None = None, kinds: set[str] | None = None) -> AssetSpec:
    """A table's asset spec: key, group = layer, grain as description, daily partitions if any."""
    return AssetSpec(
        key=table.asset_key,
        deps=deps,
        description=description or f"Grain: {table.grain}." + (f" Key: {', '.join(table.key)}." if table.key else ""),
        group_name=table.layer,
        kinds=kinds or {"spark", "delta"},
        partitions_def=daily_partitions if table.partition_column and table.layer != "raw" else None,
        freshness_policy=freshness_policy(table),
    )


def tables_asset(name: str, specs: Sequence[AssetSpec], checks: Sequence[Check] = (), **extra: Any) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """The decorator of one step that writes the tables of `specs`, with their checks.

    Check results are optional outputs (the asset is subsettable), so a daily table can report
    one evaluation per day partition instead of one per run.
    """
    with warnings.catch_warnings():  # the single-run policy is chosen on purpose: no beta notice per asset
        warnings.simplefilter("ignore", BetaWarning)
        return multi_asset(
            name=name,
            specs=list(specs),
            check_specs=[c.spec for c in checks],
            can_subset=True,
            # single-run for every asset, so one run (and one Spark session) covers a range of days
            # together with the unpartitioned assets it feeds; the CLI's --partition-range requires it
            backfill_policy=BackfillPolicy.single_run(),
            **extra,
        )


def table_asset(
    table: Table, checks: Sequence[Check] = (), deps: Sequence[AssetKey] = (), **extra: Any
) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """The decorator of a table's own asset (its step is named after the key)."""
    spec = table_spec(table, deps, extra.pop("description", None), extra.pop("kinds", None))
    return tables_asset(table.asset_key.to_python_identifier(), [spec], checks, **extra)


def partition_dates(context: AssetExecutionContext) -> list[date]:
    """The days a (possibly multi-partition) run covers."""
    return [date.fromisoformat(key) for key in context.partition_keys]


def daily_report(
    context: AssetExecutionContext,
    commit: Commit,
    days: Sequence[date],
    evaluations: Sequence[AssetCheckEvaluation] = (),
    metadata: Mapping[str, Any] | None = None,
    day_metadata: Mapping[date, Mapping[str, Any]] | None = None,
) -> Iterator[MaterializeResult | AssetCheckEvaluation]:
    """A daily table's materialization (each day with its own row count), then its per-day check evaluations."""
    for day in days:
        own = {**commit.day_metadata(day), **(day_metadata or {}).get(day, {})}
        context.add_asset_metadata(own, asset_key=commit.table.asset_key, partition_key=day.isoformat())
    yield MaterializeResult(asset_key=commit.table.asset_key, metadata={**commit.metadata(), **(metadata or {})})
    yield from evaluations
