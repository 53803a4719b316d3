"""Launching the asset graph in-process for a range of days (one run, one Spark session)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from medallion_assets.definitions import all_assets, resources as default_resources


def range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover the partitions first..last."""
    return {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}


def materialize_days(
    first: date,
    last: date,
    selection: AssetSelection | Sequence[str] | None = None,
    resources: Mapping[str, Any] | None = None,
    instance: DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> ExecuteInProcessResult:
    """Materialize the selected assets (default: all) for the days first..last in one run."""
    return materialize(
        all_assets,
        selection=selection,
        resources={**default_resources, **(resources or {})},
        instance=instance,
        tags=range_tags(first, last),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=raise_on_error,
    )
