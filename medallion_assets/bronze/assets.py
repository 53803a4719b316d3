"""bronze/<topic> and bronze/quarantine, written by one step: each raw row of the days is classified
once, and lands either in its topic's bronze table or, with its reason, in quarantine."""

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial, reduce
from typing import Any

from dagster import AssetCheckEvaluation, AssetExecutionContext, MaterializeResult, MetadataValue
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.bronze.drift import UNEXPECTED_FIELDS, drift_results, rescued_per_day
from medallion_assets.bronze.transform import duplicate_copies, flag, mark_duplicates, mark_duplicates_in_one_pass, to_bronze
from medallion_assets.ops.quality_log import QUARANTINE_TALLY
from medallion_assets.quality.checks import samples_by
from medallion_assets.quality.expectations import day_drop_outcomes, expectations_for
from medallion_assets.quality.integrity import RECONCILIATION, count_mismatch
from medallion_assets.raw.days import outside_partitions, outside_partitions_predicate, outside_reason
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.spark import side_by_side
from medallion_assets.resources.warehouse import Commit, WarehouseResource
from medallion_assets.runtime import daily_report, gate, partition_dates, table_spec, tables_asset
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import BRONZE, QUARANTINE, RAW

Event = MaterializeResult | AssetCheckEvaluation


@dataclass
class Classified:
    """One topic's raw rows of the run's days at one raw version, each with its reject reason (None: kept).

    Many rows are classified in two passes: only the duplicate copies, a few keys, are kept in memory
    (checkpointed), and the rows are not cached: the quarantine write and the bronze write each read
    the days again (the quarantine one only its columns), which costs less than building an in-memory
    copy of every row, and the pinned version makes both see the same rows. A step of few rows
    (`WarehouseResource.few_rows`) classifies them in one pass, a window over whole rows, and caches
    them: in memory they cost less than the two-pass jobs (a checkpoint of the copies, then a
    broadcast of them into each write). What each write wrote is then counted from what it holds:
    kept rows per day from bronze's Delta log, rejected rows per (day, reason) from quarantine's few
    rows.
    """

    topic: str
    flagged: DataFrame  # before duplicates are marked: enough for what the drop rules rejected
    rows: DataFrame  # every row with its final reject reason (duplicates marked)
    days: Sequence[date]
    raw_version: int
    rejected_counts: dict[tuple[date, str], int] | None = None  # from quarantine, when the step wrote it

    def rejected(self) -> DataFrame:
        """The rows bronze does not keep, in quarantine's columns."""
        rejected = self.rows.where(F.col("reject_reason").isNotNull())
        return rejected.withColumn("topic", F.lit(self.topic)).select(*QUARANTINE.column_names)

    def tally(self, kept: dict[date, int]) -> dict[tuple[date, str | None], int]:
        """Rows per (day, reason): `kept` (bronze's rows per day), and the rejected ones, counted in
        quarantine, else from the rows' narrow columns in one job."""
        if self.rejected_counts is None:
            grouped = self.rows.where(F.col("reject_reason").isNotNull()).groupBy("event_date", "reject_reason").count()
            self.rejected_counts = {(r["event_date"], r["reject_reason"]): r["count"] for r in grouped.collect()}
        return {**{(d, None): n for d, n in kept.items() if n}, **self.rejected_counts}


def classify_days(warehouse: WarehouseResource, kafka: KafkaResource, topic: str, days: Sequence[date]) -> Classified:
    """Classify one topic's raw rows of the days, at raw's current version: few in one pass, cached; many
    in two, where one job finds the duplicates."""
    version = warehouse.version(RAW[topic])
    flagged = flag(warehouse.read(RAW[topic], days, version), topic, kafka.duration_unit)
    if warehouse.few_rows:
        rows = mark_duplicates_in_one_pass(flagged).cache()
    else:
        rows = mark_duplicates(flagged, duplicate_copies(flagged).localCheckpoint())
    return Classified(topic, flagged, rows, days, version)


def day_figures(tally: dict[tuple[date, str | None], int], days: Sequence[date]) -> dict[date, dict[str, int]]:
    """Per day: raw records read and rows rejected."""
    return {
        d: {
            "raw_records": sum(n for (day, _), n in tally.items() if day == d),
            "rejected_rows": sum(n for (day, reason), n in tally.items() if day == d and reason is not None),
        }
        for d in days
    }


def tally_by_day(tally: dict[tuple[date, str | None], int], days: Sequence[date]) -> dict[str, dict]:
    """Per day: raw records read, and rows rejected per reason (the quality log's quarantine rows)."""
    figures = day_figures(tally, days)
    return {
        d.isoformat(): {"raw_records": figures[d]["raw_records"], "rejected": {r: n for (day, r), n in tally.items() if day == d and r}}
        for d in days
    }


@dataclass
class Written:
    """One topic's bronze write and what its report holds."""

    commit: Commit
    evaluations: list[AssetCheckEvaluation]
    metadata: dict[str, Any]
    day_figures: dict[date, dict[str, int]]

    def report(self, context: AssetExecutionContext, days: Sequence[date]) -> Iterator[Event]:
        """The table's materialization and per-day check evaluations."""
        yield from daily_report(context, self.commit, days, self.evaluations, self.metadata, self.day_figures)


def write_bronze(warehouse: WarehouseResource, part: Classified) -> Commit:
    """Write one topic's kept rows over its days, each day's rows with unexpected fields observed by the write."""
    return warehouse.replace_days(BRONZE[part.topic], to_bronze(part.rows, part.topic), part.days, observe=rescued_per_day(part.days))


def bronze_report(warehouse: WarehouseResource, part: Classified, commit: Commit, quarantined: DataFrame | None) -> Written:
    """One topic's bronze write, with each drop rule evaluated per day (a failing rule's sample from
    `quarantined`, the quarantine rows of the days, when written) and the drift check."""
    table, days = BRONZE[part.topic], part.days
    tally = part.tally(commit.day_rows)
    outcomes = day_drop_outcomes(table, tally, days)
    failing = {rule.name for rule, per_day in outcomes.items() for o in per_day.values() if not rule.check.passed(o)}
    if failing:  # a sample of what each failing rule dropped on each day, in one job
        source = part.flagged if quarantined is None else quarantined.where(F.col("topic") == part.topic)
        samples = samples_by(source.where(F.col("reject_reason").isin(sorted(failing))), ["event_date", "reject_reason"])
        outcomes = day_drop_outcomes(table, tally, days, samples)
    rejected = Counter({reason: n for (_, reason), n in tally.items() if reason is not None})
    return Written(
        commit,
        [*(e for rule, by_day in outcomes.items() for e in rule.check.day_results(by_day)), *drift_results(warehouse, commit, part.topic, days)],
        {
            "raw_records": sum(tally.values()),
            "rejected_by_reason": MetadataValue.json(dict(rejected)),
            QUARANTINE_TALLY: MetadataValue.json(tally_by_day(tally, days)),
        },
        day_figures(tally, days),
    )


def holds_undated(warehouse: WarehouseResource, part: Classified) -> bool:
    """Whether the topic's raw table (at the version classified) has files of rows no daily partition
    processes, from its Delta log: most batches have none, and then nothing is read for them."""
    days = warehouse.partition_days(RAW[part.topic], part.raw_version)
    return any(day is None or outside_reason(day, malformed=False) is not None for day in days)


def write_quarantine(warehouse: WarehouseResource, parts: Sequence[Classified], days: Sequence[date]) -> Commit:
    """Write every topic's rejects of the days and the raw rows no partition processes."""
    undated = [
        outside_partitions(warehouse.read(RAW[p.topic], version=p.raw_version).where(outside_partitions_predicate()))  # partition pruning: no day scan
        .withColumn("topic", F.lit(p.topic)).withColumnRenamed("reason", "reject_reason").select(*QUARANTINE.column_names)
        for p in parts
        if holds_undated(warehouse, p)
    ]
    rows = reduce(DataFrame.unionByName, [*undated, *(p.rejected() for p in parts)])
    return warehouse.replace_days(QUARANTINE, rows, days, outside_partitions_predicate())


def quarantine_report(
    context: AssetExecutionContext, warehouse: WarehouseResource, parts: Sequence[Classified], days: Sequence[date], commit: Commit
) -> Iterator[Event]:
    """Quarantine's write, its rows counted per (day, topic, reason) into each part."""
    counts = warehouse.group_rows(QUARANTINE, days, ("event_date", "topic", "reject_reason"))  # its few rows, JVM-free
    for p in parts:
        p.rejected_counts = {(day, reason): n for (day, topic, reason), n in counts.items() if topic == p.topic}
    reasons: Counter = Counter()
    for (_, topic, reason), n in counts.items():
        reasons[f"{topic}/{reason}"] += n
    yield from daily_report(context, commit, days, metadata={"rejected_by_reason": MetadataValue.json(dict(reasons))})


def reconcile(warehouse: WarehouseResource, parts: Sequence[Classified], days: Sequence[date]) -> Iterator[Event]:
    """Per day and topic: raw records (at the version read) = bronze rows + quarantine rows, all from
    what the tables hold (Delta logs, and quarantine's rows)."""
    raw_counts: dict[tuple, int] = {}
    accounted: Counter = Counter()
    for p in parts:  # row counts from the Delta logs, no scan
        raw_counts |= {(d, p.topic): n for d, n in warehouse.day_rows(RAW[p.topic], days, p.raw_version).items()}
        accounted.update({(d, p.topic): n for d, n in warehouse.day_rows(BRONZE[p.topic], days).items()})
        for (d, _), n in (p.rejected_counts or {}).items():
            accounted[(d, p.topic)] += n
    yield from RECONCILIATION.day_results(count_mismatch(raw_counts, accounted, days))


@tables_asset(
    "bronze",
    [table_spec(BRONZE[t], [RAW[t]]) for t in TOPICS] + [table_spec(QUARANTINE, list(RAW.values()))],
    checks=[*(rule.check for t in TOPICS for rule in expectations_for(BRONZE[t])), *UNEXPECTED_FIELDS.values(), RECONCILIATION],
)
def bronze(context: AssetExecutionContext, kafka: KafkaResource, warehouse: WarehouseResource) -> Iterator[Event]:
    """Each selected topic's raw rows of the run's days, classified once: kept in bronze, rejected to quarantine."""
    days = partition_dates(context)
    selected = context.selected_asset_keys
    with_quarantine = QUARANTINE.asset_key in selected  # quarantine needs every topic's rejects
    topics = [t for t in TOPICS if with_quarantine or BRONZE[t].asset_key in selected]

    def writes() -> Iterator[Event]:
        session = warehouse.session  # the topics' reads and writes overlap on threads: most of a small one is driver time
        parts = side_by_side(session, [partial(classify_days, warehouse, kafka, topic, days) for topic in topics])
        try:
            kept = [part for part in parts if BRONZE[part.topic].asset_key in selected]
            # every table's write side by side, quarantine's too: the rows are classified once, and all
            # the writes read them (from memory when few)
            quarantine = [partial(write_quarantine, warehouse, parts, days)] if with_quarantine else []
            commits = side_by_side(session, [*quarantine, *(partial(write_bronze, warehouse, part) for part in kept)])
            topic_commits = commits[len(quarantine):]  # quarantine's commit, when written, comes first
            quarantined = None
            if with_quarantine:  # its few rows then count and sample what every topic rejected
                yield from quarantine_report(context, warehouse, parts, days, commits[0])
                quarantined = warehouse.read(QUARANTINE, days)
            reports = [partial(bronze_report, warehouse, part, commit, quarantined) for part, commit in zip(kept, topic_commits)]
            for written in side_by_side(session, reports):
                yield from written.report(context, days)
        finally:
            for part in parts:
                part.rows.unpersist()  # a no-op for rows classified in two passes
        if with_quarantine:
            yield from reconcile(warehouse, parts, days)

    yield from gate(context, writes())


bronze_assets = [bronze]
