"""Helpers shared by the assets: the asset arguments of a table, and the days a run covers."""

from __future__ import annotations

from datetime import date
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy

from medallion_assets.orchestration.partitions import daily_partitions
from medallion_assets.tables import Table


def table_asset_args(table: Table, **extra: Any) -> dict[str, Any]:
    """@asset arguments of a table: key, group = layer, grain as description, daily partitions if any."""
    args: dict[str, Any] = {
        "key": table.asset_key,
        "group_name": table.layer,
        "description": f"Grain: {table.grain}." + (f" Key: {', '.join(table.key)}." if table.key else ""),
        "kinds": {"spark", "delta"},
        # single-run for every asset, so one run (and one Spark session) covers a range of days
        # together with the unpartitioned assets it feeds; the CLI's --partition-range requires it
        "backfill_policy": BackfillPolicy.single_run(),
    }
    if table.partition_column and table.layer != "raw":
        args["partitions_def"] = daily_partitions
    return args | extra


def partition_dates(context: AssetExecutionContext) -> list[date]:
    """The days a (possibly multi-partition) run covers."""
    return [date.fromisoformat(key) for key in context.partition_keys]
