"""bronze/<topic>: daily partitions of distinct valid events; every other raw row counted by reason."""

from collections import Counter
from collections.abc import Iterator
from functools import reduce

from dagster import AssetCheckEvaluation, AssetExecutionContext, AssetsDefinition, MaterializeResult, MetadataValue
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.bronze.transform import classify, to_bronze
from medallion_assets.quality.checks import samples_by
from medallion_assets.quality.expectations import day_drop_outcomes, expectations_for
from medallion_assets.quality.integrity import RECONCILIATION, count_mismatch
from medallion_assets.raw.parse import outside_partitions, outside_partitions_predicate
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import daily_report, partition_dates, table_asset
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import BRONZE, QUARANTINE, RAW

Event = MaterializeResult | AssetCheckEvaluation


def build_bronze_asset(topic: str) -> AssetsDefinition:
    """The bronze asset of one topic."""
    table = BRONZE[topic]
    rules = expectations_for(table)

    @table_asset(table, checks=[rule.check for rule in rules], deps=[RAW[topic].asset_key])
    def bronze_asset(context: AssetExecutionContext, kafka: KafkaResource, warehouse: WarehouseResource) -> Iterator[Event]:
        days = partition_dates(context)
        classified = classify(warehouse.read(RAW[topic], days), topic, kafka.duration_unit).cache()
        try:
            rows = classified.groupBy("event_date", "reject_reason").count().collect()
            tally = {(r["event_date"], r["reject_reason"]): r["count"] for r in rows}
            outcomes = day_drop_outcomes(table, tally, days)
            failing = [(d, rule.name) for rule, per_day in outcomes.items() for d, o in per_day.items() if not rule.check.passed(o)]
            if failing:  # a sample of what each failing rule dropped on each failing day, in one job
                names = sorted({name for _, name in failing})
                samples = samples_by(classified.where(F.col("reject_reason").isin(names)), ["event_date", "reject_reason"])
                outcomes = day_drop_outcomes(table, tally, days, samples)
            commit = warehouse.replace_days(table, to_bronze(classified, topic), days)
        finally:
            classified.unpersist()
        rejected = Counter({reason: n for (_, reason), n in tally.items() if reason is not None})
        per_day = {
            d: {
                "raw_records": sum(n for (day, _), n in tally.items() if day == d),
                "rejected_rows": sum(n for (day, reason), n in tally.items() if day == d and reason is not None),
            }
            for d in days
        }
        yield from daily_report(
            context,
            commit,
            days,
            [e for rule, by_day in outcomes.items() for e in rule.check.day_results(by_day)],
            {"raw_records": sum(tally.values()), "rejected_by_reason": MetadataValue.json(dict(rejected))},
            per_day,
        )

    return bronze_asset


QUARANTINE_COLUMNS = (
    "topic", "kafka_topic", "kafka_partition", "kafka_offset", "reject_reason", "parse_error", "value", "value_bytes",
    "event_date",
)


@table_asset(
    QUARANTINE, checks=[RECONCILIATION], deps=[*[t.asset_key for t in RAW.values()], *[t.asset_key for t in BRONZE.values()]]
)
def quarantine(context: AssetExecutionContext, kafka: KafkaResource, warehouse: WarehouseResource) -> Iterator[Event]:
    """Raw records kept out of bronze: of the run's days, and those without a partition; reconciles raw with bronze."""
    days = partition_dates(context)
    rejected: list[DataFrame] = []
    raw_counts: dict[tuple, int] = {}
    accounted: Counter = Counter()
    for topic in TOPICS:
        undated = warehouse.read(RAW[topic]).where(outside_partitions_predicate())  # partition pruning: no day scan
        rejected.append(
            outside_partitions(undated).withColumn("topic", F.lit(topic)).withColumnRenamed("reason", "reject_reason")
            .select(*QUARANTINE_COLUMNS)
        )
        tagged = classify(warehouse.read(RAW[topic], days), topic, kafka.duration_unit).withColumn("topic", F.lit(topic))
        rejected.append(tagged.where(F.col("reject_reason").isNotNull()).select(*QUARANTINE_COLUMNS))
        raw_counts |= {(d, topic): n for d, n in warehouse.day_rows(RAW[topic], days).items()}
        accounted.update({(d, topic): n for d, n in warehouse.day_rows(BRONZE[topic], days).items()})
    commit = warehouse.replace_days(QUARANTINE, reduce(DataFrame.unionByName, rejected), days, outside_partitions_predicate())
    reasons: Counter = Counter()
    for row in warehouse.read(QUARANTINE, days).groupBy("event_date", "topic", "reject_reason").count().collect():
        accounted[(row["event_date"], row["topic"])] += row["count"]
        reasons[f"{row['topic']}/{row['reject_reason']}"] += row["count"]
    outcomes = count_mismatch(raw_counts, accounted, days)
    yield from daily_report(
        context, commit, days, RECONCILIATION.day_results(outcomes), {"rejected_by_reason": MetadataValue.json(dict(reasons))}
    )


bronze_assets = [*[build_bronze_asset(topic) for topic in TOPICS], quarantine]
