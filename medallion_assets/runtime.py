"""Helpers shared by the assets: the asset arguments of a table, the days a run covers, and its report.

Each table's asset declares what tables.py says of it before any run (columns with their
descriptions, column lineage, grain and key, owner, layer), a code version derived from the code
that computes it (versions.py), and the column_schema_matches check, which every report evaluates.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from functools import wraps
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    BetaWarning,
    CodeReferencesMetadataValue,
    Failure,
    LocalFileCodeReference,
    MaterializeResult,
    Output,
    TableColumn,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
    multi_asset,
)

from medallion_assets.orchestration.freshness import freshness_policy
from medallion_assets.orchestration.partitions import daily_partitions, days_of_run
from medallion_assets.ops.quality_log import logged
from medallion_assets.orchestration.pools import pool_of
from medallion_assets.quality.checks import Check
from medallion_assets.quality.schema import COLUMN_SCHEMA, schema_day_results, schema_results
from medallion_assets.resources.spark import code_generation_for
from medallion_assets.resources.warehouse import Commit, WarehouseResource
from medallion_assets.tables import LINEAGE_LAYERS, OWNER, RAW, TABLES_BY_KEY, Table
from medallion_assets.versions import code_version


def declared_schema(table: Table) -> TableSchema:
    """The table's declared columns: name, Spark SQL type and description."""
    return TableSchema(columns=[TableColumn(c.name, c.type, c.doc) for c in table.columns])


def column_lineage(table: Table, upstream: Sequence[Table]) -> TableColumnLineage | None:
    """Each column's upstream columns, for a silver or gold table computed from other tables."""
    if table.layer not in LINEAGE_LAYERS or not upstream:
        return None
    deps = {c.name: [TableColumnDep(t.asset_key, name) for t, name in table.column_sources(c, upstream)] for c in table.columns}
    return TableColumnLineage(deps_by_column={name: found for name, found in deps.items() if found})


def table_spec(
    table: Table,
    upstream: Sequence[Table] = (),
    description: str | None = None,
    kinds: set[str] | None = None,
    sources: Sequence[AssetKey] = (),
) -> AssetSpec:
    """A table's asset spec: key, group = layer, grain as description, columns and lineage, daily partitions if any."""
    lineage = column_lineage(table, upstream)
    return AssetSpec(
        key=table.asset_key,
        deps=[*(t.asset_key for t in upstream), *sources],  # sources: external assets (topics, reference files)
        description=description or f"Grain: {table.grain}." + (f" Key: {', '.join(table.key)}." if table.key else ""),
        metadata={
            "dagster/column_schema": declared_schema(table),
            **({"dagster/column_lineage": lineage} if lineage is not None else {}),
        },
        group_name=table.layer,
        owners=[OWNER],
        tags={"layer": table.layer},
        kinds=kinds or {"spark", "delta"},
        partitions_def=daily_partitions if table.partition_column and table.layer != "raw" else None,
        freshness_policy=freshness_policy(table),
    )


def failed_blocking(evaluations: Iterable[AssetCheckEvaluation]) -> list[str]:
    """'asset check (day)' of each blocking per-day evaluation that failed."""
    return [
        f"{e.asset_key.to_user_string()} {e.check_name} ({e.partition})"
        for e in evaluations
        if e.blocking and not e.passed
    ]


def gate(context: AssetExecutionContext, events: Iterable[Any]) -> Iterator[Any]:
    """A daily step's events, then a Failure naming each blocking per-day check that failed among them,
    else the (empty) output of each check they evaluated.

    A range run's check results carry no partition, so a daily table reports its checks as one
    evaluation per day instead; Dagster still expects each selected check's output, and without it
    logs that the check emitted no result and that downstream steps proceed ungated. The step
    fails at the end (after every table it writes is written and reported), so nothing
    downstream runs.
    """
    evaluations = []
    for event in events:
        if isinstance(event, AssetCheckEvaluation):
            evaluations.append(event)
        yield event
    failed = failed_blocking(evaluations)
    if failed:
        raise Failure(f"Blocking checks failed, downstream assets do not run: {', '.join(failed)}")
    selected = context.selected_asset_check_keys
    for key in dict.fromkeys(e.asset_check_key for e in evaluations):
        if key in selected:
            yield Output(None, output_name=check_output_name(context, key))


def check_output_name(context: AssetExecutionContext, key: AssetCheckKey) -> str:
    """The name of a check's output in the step (the decorator names it after the check's spec)."""
    spec = next(s for s in context.assets_def.check_specs if s.key == key)
    return spec.get_python_identifier()


def code_reference(fn: Callable[..., Any]) -> dict[str, CodeReferencesMetadataValue]:
    """Metadata linking an asset to the lines of the function that computes it (the UI's code link)."""
    with warnings.catch_warnings():  # code references are a beta feature, used on purpose
        warnings.simplefilter("ignore", BetaWarning)
        where = LocalFileCodeReference(file_path=inspect.getsourcefile(fn) or "", line_number=inspect.getsourcelines(fn)[1])
        return {"dagster/code_references": CodeReferencesMetadataValue(code_references=[where])}


# The layers whose steps compute with Spark (raw ingests on its own engine, ops appends with delta-rs).
SPARK_LAYERS = ("bronze", "silver", "gold")


def sized(compute: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """A Spark step's compute function, fitted to the rows raw holds on the run's days: a small batch's
    step interprets its projections (resources/spark.code_generation_for) and commits its day writes
    and MERGEs with delta-rs (WarehouseResource.writing_few_rows)."""

    @wraps(compute)
    def step(*args: Any, warehouse: WarehouseResource, **kwargs: Any) -> Iterator[Any]:
        rows = warehouse.rows_on_days(RAW.values(), days_of_run(AssetExecutionContext.get().run.tags))
        with code_generation_for(warehouse.session, rows) as few, warehouse.writing_few_rows(few):
            result = compute(*args, warehouse=warehouse, **kwargs)
            yield from result if isinstance(result, Iterator) else [result]

    return step


def computes_with_spark(compute: Callable[..., Any], tables: Sequence[Table]) -> bool:
    """Whether a step computes with Spark: it writes bronze, silver or gold and takes the warehouse."""
    return any(t.layer in SPARK_LAYERS for t in tables) and "warehouse" in inspect.signature(compute).parameters


def tables_asset(name: str, specs: Sequence[AssetSpec], checks: Sequence[Check] = (), **extra: Any) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """The decorator of one step that writes the tables of `specs`, with their checks and each table's
    column_schema_matches; each spec gets the code version of the code that computes its table.

    Check results are optional outputs (the asset is subsettable), so a daily table can report
    one evaluation per day partition instead of one per run (through `gate`). What the step
    reports is also appended to ops/quality_log when it ends.
    A step that writes below raw is in the below-raw concurrency pool (orchestration/pools.py); one
    that computes with Spark fits its code generation and its writes to the rows of the run's days (`sized`).
    """
    tables = [TABLES_BY_KEY[spec.key] for spec in specs]

    def decorate(compute: Callable[..., Any]) -> AssetsDefinition:
        versioned = [
            s.replace_attributes(code_version=code_version(t, compute.__module__), metadata={**s.metadata, **code_reference(compute)})
            for s, t in zip(specs, tables)
        ]
        with warnings.catch_warnings():  # the single-run policy is chosen on purpose: no beta notice per asset
            warnings.simplefilter("ignore", BetaWarning)
            return multi_asset(
                name=name,
                specs=versioned,
                check_specs=[c.spec for c in (*checks, *(COLUMN_SCHEMA[t] for t in tables))],
                can_subset=True,
                # single-run for every asset, so one run (and one Spark session) covers a range of days
                # together with the unpartitioned assets it feeds; the CLI's --partition-range requires it
                backfill_policy=BackfillPolicy.single_run(),
                pool=pool_of(tables),
                **extra,
            )(logged(sized(compute) if computes_with_spark(compute, tables) else compute))

    return decorate


def table_asset(
    table: Table, checks: Sequence[Check] = (), upstream: Sequence[Table] = (), sources: Sequence[AssetKey] = (), **extra: Any
) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """The decorator of a table's own asset (its step is named after the key)."""
    spec = table_spec(table, upstream, extra.pop("description", None), extra.pop("kinds", None), sources)
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
    """A daily table's materialization (each day with its own row count), then its per-day check
    evaluations, column_schema_matches among them."""
    for day in days:
        own = {**commit.day_metadata(day), **(day_metadata or {}).get(day, {})}
        context.add_asset_metadata(own, asset_key=commit.table.asset_key, partition_key=day.isoformat())
    yield MaterializeResult(asset_key=commit.table.asset_key, metadata={**commit.metadata(), **(metadata or {})})
    yield from evaluations
    yield from schema_day_results(commit, days)


def table_report(
    commit: Commit, check_results: Sequence[AssetCheckResult] = (), metadata: Mapping[str, Any] | None = None
) -> MaterializeResult:
    """An undivided table's materialization with its check results, column_schema_matches among them."""
    return MaterializeResult(
        asset_key=commit.table.asset_key,
        metadata={**commit.metadata(), **(metadata or {})},
        check_results=[*check_results, *schema_results(commit)],
    )
