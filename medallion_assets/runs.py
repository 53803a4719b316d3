"""Launching the asset graph in-process for a range of days (one run of medallion_job, one Spark session)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    JobDefinition,
    in_process_executor,
)

from medallion_assets.definitions import all_assets, defs
from medallion_assets.definitions import resources as default_resources
from medallion_assets.orchestration.jobs import medallion_job
from medallion_assets.orchestration.partitions import range_tags

INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass(frozen=True)
class DaysRun:
    """What materialize_days launches: a job of the Definitions, the assets it selects, the run tags."""

    job: JobDefinition
    asset_selection: list[AssetKey] | None  # None: every asset of the job
    tags: dict[str, str]


def medallion_job_with(resources: Mapping[str, Any] | None = None) -> JobDefinition:
    """medallion_job of the code location, or bound to `resources` in place of those of the same name.

    A job of the code location's Definitions already has its resources bound, and Dagster refuses
    others of the same name at execution; so replacements are bound to the same assets and job.
    """
    if not resources:
        return defs.resolve_job_def(medallion_job.name)
    bound = Definitions(
        assets=all_assets, jobs=[medallion_job], resources={**default_resources, **resources}, executor=in_process_executor
    )
    return bound.resolve_job_def(medallion_job.name)


def days_run(
    first: date,
    last: date,
    selection: AssetSelection | Sequence[str] | None = None,
    resources: Mapping[str, Any] | None = None,
) -> DaysRun:
    """The medallion_job run over days first..last of the selected assets (asset key strings or a selection).

    The job comes from the Definitions (with `resources` replacing those of the same name), so
    the run is recorded under medallion_job, as one the UI or the daemon launched would be.
    """
    job = medallion_job_with(resources)
    keys = None
    if selection is not None:
        chosen = selection if isinstance(selection, AssetSelection) else AssetSelection.from_coercible(list(selection))
        keys = sorted(chosen.resolve(all_assets), key=lambda key: key.to_user_string())
    return DaysRun(job, keys, range_tags(first, last))


def materialize_days(
    first: date,
    last: date,
    selection: AssetSelection | Sequence[str] | None = None,
    resources: Mapping[str, Any] | None = None,
    instance: DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> ExecuteInProcessResult:
    """Materialize the selected assets (default: all) for the days first..last in one run of medallion_job.

    resources replace the Definitions' resources of the same name.
    """
    run = days_run(first, last, selection, resources)
    return run.job.execute_in_process(
        run_config=INFO_LOGS,
        instance=instance,
        asset_selection=run.asset_selection,
        tags=run.tags,
        raise_on_error=raise_on_error,
    )
