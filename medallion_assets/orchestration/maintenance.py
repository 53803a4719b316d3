"""Delta maintenance: OPTIMIZE (compaction) then VACUUM of every table of the warehouse."""

from typing import Any

from dagster import AssetObservation, Config, MetadataValue, OpExecutionContext, Output, job, op
from pydantic import Field
from pyspark.sql import SparkSession

from medallion_assets.orchestration.pools import BELOW_RAW_POOL
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.tables import ALL_TABLES, QUALITY_LOG

# Every table of the warehouse: the pipeline's and the quality log its steps append to.
MAINTAINED = (*ALL_TABLES, QUALITY_LOG)
# Delta refuses a shorter VACUUM retention by default: a reader or writer older than that may
# still need the files.
SAFE_RETENTION_HOURS = 168
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
VACUUM_LOGGING = "spark.databricks.delta.vacuum.logging.enabled"
# VACUUM lists the table's directories with this many tasks (Spark's default, 10000, costs a
# minute per table on a small machine).
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


class MaintenanceConfig(Config):
    """What the maintenance run does."""

    retention_hours: float = Field(
        default=SAFE_RETENTION_HOURS, ge=0, description="VACUUM keeps files needed by versions younger than this."
    )
    allow_short_retention: bool = Field(
        default=False,
        description=f"Accept retention_hours below {SAFE_RETENTION_HOURS} (breaks concurrent readers and time travel).",
    )
    listing_parallelism: int = Field(
        default=16, ge=1, description="Tasks VACUUM uses to list a table's files; raise it for very large tables."
    )
    tables: list[str] = Field(
        default_factory=list, description="Tables as layer/name (e.g. raw/listen_events); empty means every table."
    )


def _metric(metrics: Any, name: str) -> int:
    value = metrics[name] if metrics is not None and name in metrics.asDict() else None
    return int(value or 0)


def maintain_table(session: SparkSession, name: str, retention_hours: float) -> dict[str, Any]:
    """Compact the table's small files, then vacuum files older than the retention; the counts.

    Delta SQL only (no DeltaTable API), so it runs over Spark Connect too.
    """
    files_before = session.sql(f"DESCRIBE DETAIL {name}").collect()[0]["numFiles"]
    compaction = session.sql(f"OPTIMIZE {name}").collect()
    metrics = compaction[0]["metrics"] if compaction else None
    session.sql(f"VACUUM {name} RETAIN {retention_hours:g} HOURS").collect()
    history = session.sql(f"DESCRIBE HISTORY {name} LIMIT 5")
    vacuum_end = history.where("operation = 'VACUUM END'").orderBy("version", ascending=False).limit(1).collect()
    vacuum_metrics = (vacuum_end[0]["operationMetrics"] or {}) if vacuum_end else {}
    detail = session.sql(f"DESCRIBE DETAIL {name}").collect()[0]
    return {
        "files_before": int(files_before),
        "files_after": int(detail["numFiles"]),
        "files_compacted": _metric(metrics, "numFilesRemoved"),
        "files_written": _metric(metrics, "numFilesAdded"),
        "files_vacuumed": int(vacuum_metrics.get("numDeletedFiles", 0)),
        "size_bytes": int(detail["sizeInBytes"]),
    }


# In the below-raw pool: OPTIMIZE rewrites the files of the tables the other runs of that pool overwrite.
@op(
    description="OPTIMIZE and VACUUM every existing Delta table; one observation per table with the counts.",
    pool=BELOW_RAW_POOL,
)
def optimize_and_vacuum(
    context: OpExecutionContext, config: MaintenanceConfig, warehouse: WarehouseResource
) -> Output[dict[str, dict[str, Any]]]:
    if config.retention_hours < SAFE_RETENTION_HOURS and not config.allow_short_retention:
        raise ValueError(
            f"retention_hours={config.retention_hours:g} is below {SAFE_RETENTION_HOURS}: "
            "set allow_short_retention to confirm."
        )
    known = {table.path: table for table in MAINTAINED}
    unknown = sorted(set(config.tables) - set(known))
    if unknown:
        raise ValueError(f"Unknown tables {unknown}; known: {sorted(known)}")
    tables = [known[path] for path in config.tables] if config.tables else list(MAINTAINED)

    session = warehouse.session
    previous = {key: session.conf.get(key, None) for key in (RETENTION_CHECK, VACUUM_LOGGING, LISTING_PARALLELISM)}
    session.conf.set(VACUUM_LOGGING, "true")
    session.conf.set(LISTING_PARALLELISM, str(config.listing_parallelism))
    if config.retention_hours < SAFE_RETENTION_HOURS:
        session.conf.set(RETENTION_CHECK, "false")
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    try:
        for table in tables:
            uri = warehouse.uri(table)
            if not warehouse.exists(table):
                context.log.info(f"{table.path}: no Delta table at {uri} yet, skipped")
                continue
            try:
                counts = maintain_table(session, warehouse.sql_name(table), config.retention_hours)
            except Exception as error:  # one table's conflict must not stop the others' maintenance
                failures[table.path] = f"{type(error).__name__}: {error}"
                context.log.error(f"{table.path}: maintenance failed: {error}")
                continue
            results[table.path] = counts
            context.log.info(f"{table.path}: {counts}")
            context.log_event(
                AssetObservation(
                    asset_key=table.asset_key,
                    metadata={
                        **counts,
                        "retention_hours": float(config.retention_hours),
                        "table_uri": MetadataValue.path(uri),
                    },
                )
            )
    finally:
        for key, value in previous.items():
            if value is None:
                session.conf.unset(key)
            else:
                session.conf.set(key, value)
    if failures:
        raise RuntimeError(f"Maintenance failed for {sorted(failures)}: {failures}")
    return Output(
        results,
        metadata={
            "tables_maintained": len(results),
            "files_compacted": sum(r["files_compacted"] for r in results.values()),
            "files_vacuumed": sum(r["files_vacuumed"] for r in results.values()),
            "per_table": MetadataValue.json(results),
        },
    )


@job(description="Weekly Delta maintenance: OPTIMIZE (compaction) and VACUUM of every table.")
def maintenance_job() -> None:
    optimize_and_vacuum()
