"""bronze/<topic> and bronze/quarantine, written by one step: each raw row of the days is classified
once, and lands either in its topic's bronze table or, with its reason, in quarantine."""

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import reduce

from dagster import AssetCheckEvaluation, AssetExecutionContext, MaterializeResult, MetadataValue
from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F

from medallion_assets.bronze.transform import DUPLICATE, MALFORMED, duplicate_copies, flag, mark_duplicates, to_bronze
from medallion_assets.quality.checks import samples_by
from medallion_assets.quality.expectations import day_drop_outcomes, expectations_for
from medallion_assets.quality.integrity import RECONCILIATION, count_mismatch
from medallion_assets.raw.parse import outside_partitions, outside_partitions_predicate
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import daily_report, gate, partition_dates, table_spec, tables_asset
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import BRONZE, QUARANTINE, RAW

Event = MaterializeResult | AssetCheckEvaluation


def sql_text(value: str | None) -> str:
    """A string (or NULL) as a SQL literal."""
    return "NULL" if value is None else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Classified:
    """One topic's raw rows of the run's days at one raw version, each with its reject reason (None: kept).

    Only the duplicate copies, a few keys, are kept in memory (checkpointed). The rows are not cached:
    the bronze write and the quarantine write each read the days again (the quarantine one only its
    columns), which costs less than building an in-memory copy of every row, and the pinned version
    makes both see the same rows. The bronze write over `observed()` also counts the rows per
    (day, reason), so the tally costs no job of its own.
    """

    topic: str
    flagged: DataFrame  # before duplicates are marked: enough for what the drop rules rejected
    copies: DataFrame  # `duplicate_copies` of `flagged`, checkpointed
    days: Sequence[date]
    raw_version: int
    observation: Observation = field(default_factory=Observation)
    counted: dict[tuple[date, str | None], int] | None = None

    @property
    def rows(self) -> DataFrame:
        """Every row with its final reject reason (duplicates marked)."""
        return mark_duplicates(self.flagged, self.copies)

    @property
    def groups(self) -> list[tuple[date, str | None]]:
        """Every (day, reason) a row of the days can have: kept, malformed, duplicate or a drop rule."""
        reasons = [None, MALFORMED, DUPLICATE, *(rule.name for rule in expectations_for(BRONZE[self.topic], "drop"))]
        return [(day, reason) for day in self.days for reason in reasons]

    def observed(self) -> DataFrame:
        """The rows, counted per (day, reason) by the action that first runs over them."""
        # One SQL text per count: a few dozen of them, built in one call each rather than ten.
        counts = [
            F.expr(f"count_if(event_date = DATE'{day.isoformat()}' AND reject_reason <=> {sql_text(reason)})").alias(f"n{i}")
            for i, (day, reason) in enumerate(self.groups)
        ]
        return self.rows.observe(self.observation, F.count(F.lit(1)).alias("rows"), *counts)

    def take_observed_counts(self) -> None:
        """Keep the counts the write over `observed()` made; every row must be in one group."""
        metrics = self.observation.get
        counts = {group: metrics[f"n{i}"] for i, group in enumerate(self.groups) if metrics[f"n{i}"]}
        if sum(counts.values()) != metrics["rows"]:
            raise RuntimeError(f"bronze/{self.topic}: {metrics['rows']} rows read, {sum(counts.values())} in known (day, reason) groups")
        self.counted = counts

    @property
    def tally(self) -> dict[tuple[date, str | None], int]:
        """Rows per (day, reason): observed while bronze was written, else counted in one job."""
        if self.counted is None:
            grouped = self.rows.groupBy("event_date", "reject_reason").count().collect()
            self.counted = {(r["event_date"], r["reject_reason"]): r["count"] for r in grouped}
        return self.counted

    def rejected(self) -> DataFrame:
        """The rows bronze does not keep, in quarantine's columns."""
        rejected = self.rows.where(F.col("reject_reason").isNotNull())
        return rejected.withColumn("topic", F.lit(self.topic)).select(*QUARANTINE.column_names)

    def day_figures(self) -> dict[date, dict[str, int]]:
        """Per day: raw records read and rows rejected."""
        return {
            d: {
                "raw_records": sum(n for (day, _), n in self.tally.items() if day == d),
                "rejected_rows": sum(n for (day, reason), n in self.tally.items() if day == d and reason is not None),
            }
            for d in self.days
        }


def classify_days(warehouse: WarehouseResource, kafka: KafkaResource, topic: str, days: Sequence[date]) -> Classified:
    """Classify one topic's raw rows of the days, at raw's current version: one job finds the duplicates."""
    version = warehouse.version(RAW[topic])
    flagged = flag(warehouse.read(RAW[topic], days, version), topic, kafka.duration_unit)
    return Classified(topic, flagged, duplicate_copies(flagged).localCheckpoint(), days, version)


def write_bronze(context: AssetExecutionContext, warehouse: WarehouseResource, part: Classified) -> Iterator[Event]:
    """Write one topic's kept rows over its days; report them and each drop rule per day."""
    table, days = BRONZE[part.topic], part.days
    commit = warehouse.replace_days(table, to_bronze(part.observed(), part.topic), days)
    part.take_observed_counts()
    outcomes = day_drop_outcomes(table, part.tally, days)
    failing = {rule.name for rule, per_day in outcomes.items() for o in per_day.values() if not rule.check.passed(o)}
    if failing:  # a sample of what each failing rule dropped on each day, in one job
        samples = samples_by(part.flagged.where(F.col("reject_reason").isin(sorted(failing))), ["event_date", "reject_reason"])
        outcomes = day_drop_outcomes(table, part.tally, days, samples)
    rejected = Counter({reason: n for (_, reason), n in part.tally.items() if reason is not None})
    yield from daily_report(
        context,
        commit,
        days,
        [e for rule, by_day in outcomes.items() for e in rule.check.day_results(by_day)],
        {"raw_records": sum(part.tally.values()), "rejected_by_reason": MetadataValue.json(dict(rejected))},
        part.day_figures(),
    )


def write_quarantine(context: AssetExecutionContext, warehouse: WarehouseResource, parts: Sequence[Classified], days: Sequence[date]) -> Iterator[Event]:
    """Write every topic's rejects of the days and the raw rows no partition processes; reconcile raw with bronze."""
    undated = [
        outside_partitions(warehouse.read(RAW[p.topic], version=p.raw_version).where(outside_partitions_predicate()))  # partition pruning: no day scan
        .withColumn("topic", F.lit(p.topic)).withColumnRenamed("reason", "reject_reason").select(*QUARANTINE.column_names)
        for p in parts
    ]
    rows = reduce(DataFrame.unionByName, [*undated, *(p.rejected() for p in parts)])
    commit = warehouse.replace_days(QUARANTINE, rows, days, outside_partitions_predicate())
    raw_counts: dict[tuple, int] = {}
    accounted: Counter = Counter()
    for p in parts:  # row counts from the Delta logs, no scan
        raw_counts |= {(d, p.topic): n for d, n in warehouse.day_rows(RAW[p.topic], days, p.raw_version).items()}
        accounted.update({(d, p.topic): n for d, n in warehouse.day_rows(BRONZE[p.topic], days).items()})
    reasons: Counter = Counter()
    for row in warehouse.read(QUARANTINE, days).groupBy("event_date", "topic", "reject_reason").count().collect():
        accounted[(row["event_date"], row["topic"])] += row["count"]
        reasons[f"{row['topic']}/{row['reject_reason']}"] += row["count"]
    outcomes = count_mismatch(raw_counts, accounted, days)
    yield from daily_report(
        context, commit, days, RECONCILIATION.day_results(outcomes), {"rejected_by_reason": MetadataValue.json(dict(reasons))}
    )


@tables_asset(
    "bronze",
    [table_spec(BRONZE[t], [RAW[t]]) for t in TOPICS] + [table_spec(QUARANTINE, list(RAW.values()))],
    checks=[*(rule.check for t in TOPICS for rule in expectations_for(BRONZE[t])), RECONCILIATION],
)
def bronze(context: AssetExecutionContext, kafka: KafkaResource, warehouse: WarehouseResource) -> Iterator[Event]:
    """Each selected topic's raw rows of the run's days, classified once: kept in bronze, rejected to quarantine."""
    days = partition_dates(context)
    selected = context.selected_asset_keys
    with_quarantine = QUARANTINE.asset_key in selected  # quarantine needs every topic's rejects
    topics = [t for t in TOPICS if with_quarantine or BRONZE[t].asset_key in selected]

    def writes() -> Iterator[Event]:
        parts = [classify_days(warehouse, kafka, topic, days) for topic in topics]
        for part in parts:
            if BRONZE[part.topic].asset_key in selected:
                yield from write_bronze(context, warehouse, part)
        if with_quarantine:
            yield from write_quarantine(context, warehouse, parts, days)

    yield from gate(writes())


bronze_assets = [bronze]
