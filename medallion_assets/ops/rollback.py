"""Rollback of a run: every table it committed to goes back to its version before the run, downstream
first, with raw's Kafka offsets and Dagster's metadata kept true.

Every commit names the run that made it (warehouse.COMMIT_TOKEN), so the plan comes from the Delta
logs alone (delta-rs, no Spark): for each table, the run's first commit, and any later commit of
another run, which stops the rollback unless it cascades to those runs too. Raw records how far it
holds each Kafka partition as a Delta transaction that RESTORE does not take back; the rollback
commits the older offsets again, so the next ingestion reads those records anew.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from dagster import AssetMaterialization, Config, MetadataValue, OpExecutionContext, job, op
from pydantic import Field

from medallion_assets.raw.offsets import partition_app_id, raw_next_offsets
from medallion_assets.resources.kafka import KafkaResource, KafkaUnavailableError
from medallion_assets.resources.warehouse import WarehouseResource, written_by
from medallion_assets.tables import ALL_TABLES, RAW, Table

# Operations that leave a table's rows as they are: a later one does not stop a rollback.
ROWS_UNCHANGED = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})
# Downstream first: gold, silver, bronze, then raw.
RESTORE_ORDER: tuple[Table, ...] = tuple(reversed(ALL_TABLES))


class LoggedCommit(NamedTuple):
    """One commit of a table's Delta log, as the plan needs it."""

    version: int
    run_id: str | None  # the run that made it (None: a writer outside any run)
    operation: str
    at_ms: int = 0  # commit time, epoch milliseconds
    retained_ms: int | None = None  # a VACUUM's retention: it deleted files removed before at_ms - retained_ms


class RollbackRefused(RuntimeError):
    """The rollback would undo what a later run wrote, or the run committed to no table."""


@dataclass(frozen=True)
class TableRollback:
    """One table of the plan: its version before the rolled-back runs (None: they created it), now."""

    table: Table
    before: int | None
    latest: int
    run_versions: tuple[int, ...]  # the commits of the rolled-back runs
    later_runs: tuple[str, ...] = ()  # other runs that committed after the first of them
    vacuumed: bool = False  # a VACUUM since the run may have deleted files `before` needs


@dataclass(frozen=True)
class OffsetReset:
    """A Kafka partition raw goes back on: from the offset it holds now to the one it held before."""

    table: Table  # the raw table
    topic: str  # the physical Kafka topic
    partition: int
    held: int
    back_to: int
    lost: int | None  # records Kafka no longer holds among those to read again (None: Kafka unreachable)

    @property
    def app_id(self) -> str:
        """The Delta transaction of the partition."""
        return partition_app_id(self.topic, self.partition)


@dataclass
class Plan:
    """What rolling back `run_id` does: the runs it undoes, each table (restore order), each offset."""

    run_id: str
    runs: list[str]
    tables: list[TableRollback]
    offsets: list[OffsetReset] = field(default_factory=list)
    kafka_error: str | None = None
    accept_loss: bool = False  # go ahead although records to ingest again are gone from Kafka, or unchecked

    @property
    def blockers(self) -> dict[str, tuple[str, ...]]:
        """Table -> the later runs that stop the rollback (none when cascading)."""
        return {t.table.path: t.later_runs for t in self.tables if t.later_runs}

    @property
    def loses_records(self) -> bool:
        """Whether undoing raw would drop records Kafka no longer holds (or that could not be checked)."""
        return any(o.lost != 0 for o in self.offsets)

    @property
    def refused(self) -> bool:
        """Whether the plan cannot be carried out: later runs not cascaded, a table vacuumed since, or
        records lost for good without `accept_loss`."""
        return bool(self.blockers) or any(t.vacuumed for t in self.tables) or (self.loses_records and not self.accept_loss)

    def lines(self) -> Iterator[str]:
        """The plan as text."""
        yield f"Rollback of run {self.run_id}" + (f" with the runs after it: {', '.join(self.runs[1:])}" if self.runs[1:] else "")
        for t in self.tables:
            target = f"version {t.before}" if t.before is not None else "empty (the run created it)"
            yield f"  {t.table.path:<34} version {t.latest} -> {target}   (run commits: {', '.join(map(str, t.run_versions))})"
        for o in self.offsets:
            lost = "" if not o.lost else f"; Kafka no longer holds {o.lost} of those records"
            yield f"  offsets {o.topic}[{o.partition}]: {o.held} -> {o.back_to}, {o.held - o.back_to} records to ingest again{lost}"
        if self.kafka_error:
            yield f"  Kafka unreachable, retention not checked: {self.kafka_error}"
        for path, runs in self.blockers.items():
            remedy = "a writer outside any run cannot be rolled back" if OUTSIDE in runs else "--cascade rolls them back too"
            yield f"  REFUSED: {path} was changed by later runs {', '.join(runs)} ({remedy})"
        for t in self.tables:
            if t.vacuumed:
                yield f"  REFUSED: {t.table.path} was vacuumed since the run: the files of version {t.before} may be gone"
        if self.loses_records and not self.accept_loss:
            yield "  REFUSED: raw would drop records Kafka no longer holds, or that could not be checked (--accept-loss goes ahead)"


OUTSIDE = "(a writer outside any run)"
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000  # Delta's default VACUUM retention


def logged_commit(entry: dict[str, Any]) -> LoggedCommit:
    """A Delta log history entry as the plan reads it."""
    operation = str(entry.get("operation"))
    parameters = entry.get("operationParameters") or {}
    retained = None
    if operation.startswith("VACUUM"):
        retained = int(parameters.get("specifiedRetentionMillis") or parameters.get("defaultRetentionMillis") or DEFAULT_RETENTION_MS)
    return LoggedCommit(int(entry["version"]), written_by(entry.get("userMetadata")), operation, int(entry.get("timestamp") or 0), retained)


def run_commits(warehouse: WarehouseResource, table: Table) -> list[LoggedCommit]:
    """Every commit of a table, oldest first (none when it does not exist)."""
    delta = warehouse.delta_rs(table)
    return sorted(logged_commit(c) for c in delta.history()) if delta is not None else []


def plan_tables(commits: dict[Table, list[LoggedCommit]], run_id: str, cascade: bool) -> tuple[list[str], list[TableRollback]]:
    """The runs to undo (`run_id` first, then those cascading adds) and each table's rollback.

    A later VACUUM stops a table only when its retention no longer covered the run's first commit:
    the files that commit removed (those `before` needs) may be gone then.
    """
    runs = [run_id]
    while True:
        tables = []
        for table in RESTORE_ORDER:
            ours = [c for c in commits.get(table, []) if c.run_id in runs]
            if not ours:
                continue
            first = ours[0]
            later = [
                c.run_id or OUTSIDE for c in commits[table] if c.version > first.version and c.run_id not in runs and c.operation not in ROWS_UNCHANGED
            ]
            before = first.version - 1 if first.version > 0 else None
            vacuumed = before is not None and any(
                c.retained_ms is not None and c.version > first.version and c.at_ms - c.retained_ms > first.at_ms for c in commits[table]
            )
            versions = tuple(c.version for c in ours)
            tables.append(TableRollback(table, before, commits[table][-1].version, versions, tuple(dict.fromkeys(later)), vacuumed))
        added = [r for t in tables for r in t.later_runs if r not in runs and r != OUTSIDE]
        if not cascade or not added:
            return runs, tables
        runs += list(dict.fromkeys(added))


def plan_offsets(warehouse: WarehouseResource, kafka: KafkaResource, tables: Sequence[TableRollback]) -> tuple[list[OffsetReset], str | None]:
    """Per Kafka partition of each raw table in the plan, the offset raw held before; what Kafka lost of them."""
    resets, error = [], None
    for t in tables:
        topic = next((name for name, raw in RAW.items() if raw == t.table), None)
        if topic is None:
            continue
        physical = kafka.topic(topic)
        now, before = warehouse.delta_rs(t.table), warehouse.delta_rs(t.table, t.before) if t.before is not None else None
        try:
            marks = kafka.end_offsets(topic)
        except KafkaUnavailableError as unreachable:
            marks, error = {}, str(unreachable)
        partitions = set(marks) | set(warehouse.kafka_partitions(t.table))
        held_now, held_before = (raw_next_offsets(delta, physical, partitions) for delta in (now, before))  # as ingestion reads them
        for p in sorted(partitions):
            held, back_to = held_now.get(p, 0), held_before.get(p, 0)
            if held != back_to:
                low = marks[p][0] if p in marks else None
                resets.append(OffsetReset(t.table, physical, p, held, back_to, None if low is None else max(0, low - back_to)))
    return resets, error


def plan(warehouse: WarehouseResource, kafka: KafkaResource, run_id: str, cascade: bool = False, accept_loss: bool = False) -> Plan:
    """The rollback of a run, from the Delta logs and Kafka's watermarks; nothing is changed."""
    commits = {table: run_commits(warehouse, table) for table in ALL_TABLES}
    runs, tables = plan_tables(commits, run_id, cascade)
    if not tables:
        raise RollbackRefused(f"run {run_id} committed to no table under {warehouse.root_uri}")
    offsets, error = plan_offsets(warehouse, kafka, tables)
    return Plan(run_id, runs, tables, offsets, error, accept_loss)


def restored(warehouse: WarehouseResource, t: TableRollback, plan_: Plan) -> Iterator[AssetMaterialization]:
    """The materializations of a restored table: one per day whose files changed (daily tables), else one."""
    metadata: dict[str, Any] = {
        "restored_to_version": t.before if t.before is not None else MetadataValue.text("empty"),
        "rolled_back_run": plan_.run_id,
        "rolled_back_runs": MetadataValue.json(plan_.runs),
        "dagster/row_count": warehouse.total_rows(t.table),
        "table_uri": MetadataValue.path(warehouse.uri(t.table)),
    }
    if t.table.partition_column is None or t.table.layer == "raw":
        yield AssetMaterialization(asset_key=t.table.asset_key, metadata=metadata)
        return
    days: set[date] = warehouse.days_changed(t.table, t.before, t.latest)
    rows = warehouse.day_rows(t.table, sorted(days))
    for day in sorted(days):
        yield AssetMaterialization(
            asset_key=t.table.asset_key, partition=day.isoformat(), metadata={**metadata, "dagster/partition_row_count": rows.get(day, 0)}
        )


def execute(warehouse: WarehouseResource, plan_: Plan) -> Iterator[AssetMaterialization]:
    """Restore each table (downstream first), take raw's offsets back, and report each table restored."""
    if plan_.refused:
        raise RollbackRefused("\n".join(plan_.lines()))
    for t in plan_.tables:
        offsets = {o.app_id: o.back_to for o in plan_.offsets if o.table == t.table}
        if offsets:  # RESTORE keeps the latest transactions: the older ones go first, so a failure in
            warehouse.commit_transactions(t.table, offsets)  # between re-reads records (counted duplicates), never skips them
        warehouse.restore(t.table, t.before)
        yield from restored(warehouse, t, plan_)


class RollbackConfig(Config):
    """Which run to roll back, and how."""

    run_id: str = Field(description="The run whose changes to undo.")
    cascade: bool = Field(default=False, description="Also roll back the later runs that changed the same tables.")
    dry_run: bool = Field(default=False, description="Only log the plan; change nothing.")
    accept_loss: bool = Field(
        default=False, description="Go ahead although some records to ingest again are gone from Kafka (or could not be checked)."
    )


@op(out={}, description="Restore every table a run changed to its version before the run (downstream first), offsets included.")
def rollback_run(context: OpExecutionContext, config: RollbackConfig, warehouse: WarehouseResource, kafka: KafkaResource) -> Iterator[Any]:
    """Plan, log the plan, then (unless a dry run) restore and record a materialization per restored table."""
    plan_ = plan(warehouse, kafka, config.run_id, config.cascade, config.accept_loss)
    context.log.info("\n".join(plan_.lines()))
    if not config.dry_run:
        yield from execute(warehouse, plan_)


@job(description="Undo a run: its tables back to their versions before it, Kafka offsets and metadata kept true.")
def rollback_job() -> None:
    """One step: rollback_run."""
    rollback_run()
