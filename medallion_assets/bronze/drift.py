"""Schema drift, never silent: each bronze table's `unexpected_fields` check, a WARN naming the fields its
`rescued` column holds (raw's parse puts there every field outside the event contract, and every
contract field sent as another JSON kind), with their counts and a sample, per day."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from dagster import AssetCheckEvaluation, MetadataValue
from pyspark.sql import Column
from pyspark.sql import functions as F

from medallion_assets.quality.checks import Check, Outcome, samples_by
from medallion_assets.resources.warehouse import Commit, WarehouseResource
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import BRONZE

UNEXPECTED_FIELDS: dict[str, Check] = {
    topic: Check(
        BRONZE[topic],
        "unexpected_fields",
        "no event carries a field outside the contract or a contract field of another JSON kind (kept in rescued)",
        blocking=False,
    )
    for topic in TOPICS
}
SAMPLED = ("kafka_partition", "kafka_offset", "event_date", "rescued")


def rescued_per_day(days: Sequence[date]) -> dict[str, Column]:
    """Aggregates the bronze write observes: per day, the rows it wrote whose `rescued` is not null."""
    return {f"rescued {d.isoformat()}": F.count_if(F.col("rescued").isNotNull() & (F.col("event_date") == F.lit(d))) for d in days}


def drift_results(warehouse: WarehouseResource, commit: Commit, topic: str, days: Sequence[date]) -> list[AssetCheckEvaluation]:
    """The check per day, from the rows the write observed. Only when some day has drift are its rows
    read back, once to count each field per day and once to sample them."""
    failed = {d: int(commit.observed.get(f"rescued {d.isoformat()}") or 0) for d in days}
    fields: dict[date, dict[str, int]] = {d: {} for d in days}
    samples: Mapping[tuple, list] = {}
    drifted = [d for d, n in failed.items() if n]
    if drifted:
        rows = warehouse.read(BRONZE[topic], drifted).where(F.col("rescued").isNotNull())
        named = rows.select("event_date", F.explode(F.json_object_keys("rescued")).alias("field"))
        for row in named.groupBy("event_date", "field").count().collect():
            fields[row["event_date"]][row["field"]] = row["count"]
        samples = samples_by(rows.select(*SAMPLED), ["event_date"])
    outcomes = {d: Outcome(failed[d], commit.day_rows.get(d, 0), samples.get((d,))) for d in days}
    extra = {d: {"unexpected_fields": MetadataValue.json(dict(sorted(fields[d].items())))} for d in days}
    return UNEXPECTED_FIELDS[topic].day_results(outcomes, extra)
