"""ops/quality_log: what every step proved, as a Delta table anyone can query (Spark, delta-rs, DuckDB).

Each step appends, when it ends (failed or not), one row per check evaluation it reported, one per
quarantine tally of a day and reason, and one per table it wrote with its rows in and out. The rows
come from the very events the step gives Dagster, so the log and the event log agree by construction;
the quality_log asset's checks verify that they do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from functools import wraps
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    TableSchemaMetadataValue,
)

from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.tables import QUALITY_LOG

# Materialization metadata of a bronze table: per day, its raw records and rows rejected per reason.
QUARANTINE_TALLY = "rejected_by_day"
# Metadata that says how many rows a step read (rows in); rows out is always rows_written.
ROWS_IN_KEYS = ("raw_records", "records_ingested")
# Metadata not worth a copy in the log: column schemas and lineage, which the asset itself describes.
NOT_LOGGED = ("dagster/column_schema", "dagster/column_lineage")


def plain(value: Any) -> Any:
    """A metadata value as JSON-ready data (a NaN or infinite float as null, which JSON cannot hold)."""
    value = value.value if isinstance(value, MetadataValue) else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


def as_json(metadata: Mapping[str, Any]) -> str:
    """Metadata as one JSON object, without the schemas (and quarantine tallies, logged as rows of their own)."""
    kept = {
        k: plain(v)
        for k, v in metadata.items()
        if k not in NOT_LOGGED and k != QUARANTINE_TALLY and not isinstance(v, TableSchemaMetadataValue)
    }
    return json.dumps(kept, default=str, sort_keys=True)


def counted(metadata: Mapping[str, Any], prefix: str) -> int | None:
    """A check's `failed_<unit>` or `total_<unit>` (failed_fraction aside)."""
    return next((int(plain(v)) for k, v in metadata.items() if k.startswith(prefix) and k != "failed_fraction"), None)


def check_entry(result: AssetCheckEvaluation | AssetCheckResult, asset: AssetKey | None) -> dict[str, Any]:
    """The row of one check evaluation."""
    metadata = result.metadata or {}
    return {
        "kind": "check",
        "asset": (result.asset_key or asset or AssetKey("?")).to_user_string(),
        "partition_key": getattr(result, "partition", None),
        "name": result.check_name,
        "passed": result.passed,
        "severity": result.severity.value,
        "failed_rows": counted(metadata, "failed_"),
        "total_rows": counted(metadata, "total_"),
        "metadata": as_json(metadata),
    }


def materialization_entries(result: MaterializeResult) -> list[dict[str, Any]]:
    """The rows of one table written: its rows in and out, each quarantine tally, then its checks."""
    metadata = result.metadata or {}
    asset = result.asset_key.to_user_string() if result.asset_key else "?"
    rows_in = next((int(plain(metadata[k])) for k in ROWS_IN_KEYS if k in metadata), None)
    entries = [
        {
            "kind": "rows",
            "asset": asset,
            "name": "rows",
            "total_rows": int(plain(metadata.get("rows_written", 0))),
            "metadata": json.dumps(
                {"rows_in": rows_in, "rows_out": plain(metadata.get("rows_written", 0)), "table_rows": plain(metadata.get("dagster/row_count"))}
            ),
        }
    ]
    for day, tally in (plain(metadata.get(QUARANTINE_TALLY)) or {}).items():
        entries += [
            {"kind": "quarantine", "asset": asset, "partition_key": day, "name": reason, "failed_rows": n, "total_rows": tally["raw_records"], "metadata": "{}"}
            for reason, n in sorted(tally["rejected"].items())
        ]
    return entries + [check_entry(c, result.asset_key) for c in result.check_results or ()]


def entries_of(event: Any) -> list[dict[str, Any]]:
    """The log's rows of one event a step reports (none for other events)."""
    if isinstance(event, MaterializeResult):
        return materialization_entries(event)
    if isinstance(event, (AssetCheckEvaluation, AssetCheckResult)):
        return [check_entry(event, None)]
    return []


def log_rows(run_id: str, step: str, entries: Iterable[Mapping[str, Any]], at: datetime | None = None) -> pa.Table:
    """Rows of the log, in its schema."""
    schema = QUALITY_LOG.arrow_schema()
    stamp = {"logged_at": at or datetime.now(timezone.utc), "run_id": run_id, "step": step}
    return pa.Table.from_pylist([{**dict.fromkeys(schema.names), **e, **stamp} for e in entries], schema=schema)


def logged(compute: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """A step's compute function that appends what it reports to the quality log when it ends, failed or not."""

    @wraps(compute)
    def step(*args: Any, **kwargs: Any) -> Iterator[Any]:
        context = AssetExecutionContext.get()  # the step's own, whether or not `compute` takes it
        entries: list[dict[str, Any]] = []
        succeeded = False
        try:
            result = compute(*args, **kwargs)
            for event in result if isinstance(result, Iterator) else [result]:
                entries += entries_of(event)
                yield event
            succeeded = True
        finally:
            warehouse: WarehouseResource | None = kwargs.get("warehouse")  # every table's step has it
            if entries and warehouse is not None:
                rows = log_rows(context.run.run_id, context.op_def.name, entries)
                try:
                    warehouse.append(QUALITY_LOG, rows)
                except Exception:
                    if succeeded:
                        raise
                    context.log.exception("the failed step's checks could not be added to ops/quality_log")

    return step
