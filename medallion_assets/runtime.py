"""Helpers shared by the assets: partitions of a run and table reads."""

from __future__ import annotations

from datetime import date

from dagster import AssetExecutionContext


def partition_dates(context: AssetExecutionContext) -> list[date]:
    """The days a (possibly multi-partition) run covers."""
    return [date.fromisoformat(key) for key in context.partition_keys]
