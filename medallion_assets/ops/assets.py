"""The ops/quality_log asset: every step appends to the table (ops/quality_log.py); this step keeps it
compact and audits it against Dagster's event log, with its two checks declared and evaluated here."""

import warnings
from datetime import datetime, timedelta, timezone

import duckdb
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    BetaWarning,
    DagsterEventType,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from medallion_assets.ops.quality_log import log_rows
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import code_reference, table_spec
from medallion_assets.tables import QUALITY_LOG
from medallion_assets.versions import code_version

# The audit looks at the runs that logged in this window, the latest ones first, at most this many.
AUDIT_HOURS = 24
AUDITED_RUNS = 50
# More files than this and the step compacts them (each step appends a small one).
COMPACT_ABOVE_FILES = 64
KEY = ", ".join(QUALITY_LOG.key)

MATCHES_EVENT_LOG = AssetCheckSpec(
    "matches_event_log",
    asset=QUALITY_LOG.asset_key,
    description="each audited run has one check row per check evaluation Dagster recorded for it",
)
UNIQUE_ENTRIES = AssetCheckSpec(
    "unique_entries", asset=QUALITY_LOG.asset_key, description=f"no two rows of the audited runs share ({KEY})"
)


def audit(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Compact the log when its files pile up, then audit the runs of the last day (no Spark: delta-rs and DuckDB)."""
    if not warehouse.exists(QUALITY_LOG):
        warehouse.append(QUALITY_LOG, log_rows(context.run.run_id, "quality_log", []))  # an empty log, so it can be read
    delta = warehouse.delta_rs(QUALITY_LOG)
    assert delta is not None
    files = len(delta.file_uris())
    if files > COMPACT_ABOVE_FILES:
        delta.optimize.compact()
    since = datetime.now(timezone.utc) - timedelta(hours=AUDIT_HOURS)
    with duckdb.connect() as con:
        con.register("log", delta.to_pyarrow_dataset())
        logged = con.execute(  # the runs that logged in the window, with every check row they logged
            "WITH recent AS (SELECT run_id FROM log WHERE logged_at >= ? AND run_id <> ? GROUP BY run_id"
            " ORDER BY max(logged_at) DESC LIMIT ?)"
            " SELECT run_id, count(*) FILTER (WHERE kind = 'check') FROM log WHERE run_id IN (SELECT run_id FROM recent) GROUP BY run_id",
            [since, context.run.run_id, AUDITED_RUNS],
        ).fetchall()
        audited = [run_id for run_id, _ in logged]
        repeated = con.execute(
            f"SELECT {KEY}, count(*) AS n FROM log WHERE run_id IN (SELECT unnest(?)) GROUP BY ALL HAVING n > 1 LIMIT 5",
            [audited],
        ).fetchall()
    mismatched = {}
    for run_id, rows in logged:
        if context.instance.get_run_by_id(run_id) is None:
            continue  # a run of another Dagster instance writing to this warehouse
        recorded = len(context.instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records)
        if recorded != rows:
            mismatched[run_id] = {"logged": rows, "recorded": recorded}
    return MaterializeResult(
        metadata={
            "dagster/row_count": warehouse.total_rows(QUALITY_LOG),  # from the Delta log, no scan
            "files_before": files,
            "compacted": files > COMPACT_ABOVE_FILES,
            "table_uri": MetadataValue.path(warehouse.uri(QUALITY_LOG)),
        },
        check_results=[
            AssetCheckResult(
                check_name=MATCHES_EVENT_LOG.name,
                passed=not mismatched,
                severity=AssetCheckSeverity.ERROR,
                metadata={"audited_runs": len(audited), "failed_runs": len(mismatched), "mismatches": MetadataValue.json(mismatched)},
            ),
            AssetCheckResult(
                check_name=UNIQUE_ENTRIES.name,
                passed=not repeated,
                severity=AssetCheckSeverity.ERROR,
                metadata={"repeated_keys": len(repeated), "sample": MetadataValue.json([list(map(str, r)) for r in repeated])},
            ),
        ],
    )


SPEC = table_spec(QUALITY_LOG, kinds={"delta", "duckdb"}, description=f"Grain: {QUALITY_LOG.grain}. Appended by every step.")
with warnings.catch_warnings():  # the single-run policy is chosen on purpose: no beta notice
    warnings.simplefilter("ignore", BetaWarning)
    quality_log = multi_asset(
        name="quality_log",
        specs=[SPEC.replace_attributes(code_version=code_version(QUALITY_LOG, __name__), metadata={**SPEC.metadata, **code_reference(audit)})],
        check_specs=[MATCHES_EVENT_LOG, UNIQUE_ENTRIES],
        backfill_policy=BackfillPolicy.single_run(),  # like every asset, so `--select '*' --partition-range` takes it too
    )(audit)
ops_assets = [quality_log]
