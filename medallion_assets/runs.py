"""Launching the asset graph in-process for a range of days (one run, one Spark session)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize

from medallion_assets.definitions import all_assets
from medallion_assets.definitions import resources as default_resources
from medallion_assets.partitions import range_tags


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
