"""raw/<topic>: every Kafka record exactly once, appended by offset range."""

from collections import Counter

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Backoff,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
)

from medallion_assets.orchestration.partitions import EVENT_DATES
from medallion_assets.quality.checks import Outcome, sample
from medallion_assets.quality.integrity import RECORDS_OUTSIDE_PARTITIONS
from medallion_assets.raw.offsets import batch_tally, in_ranges, plan_ranges, raw_next_offsets, spark_offsets
from medallion_assets.raw.parse import (
    empty_records,
    outside_partitions,
    outside_partitions_predicate,
    outside_reason,
    parse_records,
)
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runtime import table_asset, table_report
from medallion_assets.schemas import TOPICS
from medallion_assets.sources import TOPIC_ASSETS
from medallion_assets.tables import RAW

KAFKA_RETRY = RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL)


def build_raw_asset(topic: str) -> AssetsDefinition:
    """The raw asset of one topic."""
    table = RAW[topic]
    outside_check = RECORDS_OUTSIDE_PARTITIONS[topic]

    @table_asset(
        table,
        checks=[outside_check],
        sources=[TOPIC_ASSETS[topic].key],
        description=f"Grain: {table.grain} of topic {topic}. Appended by Kafka offset range, exactly once.",
        kinds={"spark", "delta", "kafka"},
        retry_policy=KAFKA_RETRY,
    )
    def raw_asset(context: AssetExecutionContext, kafka: KafkaResource, warehouse: WarehouseResource) -> MaterializeResult:
        physical = kafka.topic(topic)
        ranges = plan_ranges(kafka.end_offsets(topic), raw_next_offsets(warehouse.delta_rs(table)))  # file statistics, no scan
        pending = sum(r.count for r in ranges)
        offsets = MetadataValue.json({str(r.partition): {"start": r.start, "end": r.end, "expired": r.expired} for r in ranges})
        base = {"records_ingested": pending, "offset_ranges": offsets, "kafka_topic": physical}
        if pending == 0:
            context.log.info(f"{physical}: no new records")
            if warehouse.exists(table):
                commit = warehouse.unchanged(table)
            else:  # an empty table, so downstream days of a silent topic are empty, not missing
                commit = warehouse.append_once(table, parse_records(empty_records(warehouse.session), topic), f"raw/{physical}", 0)
            nothing = outside_check.result(Outcome(0, 0), by_reason=MetadataValue.json({}))
            return table_report(commit, [nothing], {**base, EVENT_DATES: MetadataValue.json([])})
        starting, ending = spark_offsets(physical, ranges)
        records = kafka.read_batch(warehouse.session, topic, starting, ending)
        # One pass from Kafka to Delta; what the batch held per day comes from the commit's file statistics.
        commit = warehouse.append_once(table, parse_records(records, topic), f"raw/{physical}", sum(r.end for r in ranges))
        tally = batch_tally(warehouse.added_files(commit))
        outside = Counter()
        for (day, malformed), n in tally.items():
            reason = outside_reason(day, malformed)
            if reason is not None:
                outside[reason] += n
        examples = None
        if outside:  # the outside rows lie in a few small partitions (no day, or out of range)
            batch = warehouse.read(table).where(outside_partitions_predicate()).where(in_ranges(ranges))
            examples = sample(outside_partitions(batch).select("reason", "kafka_partition", "kafka_offset", "value"))
        check = outside_check.result(
            Outcome(sum(outside.values()), pending, examples), by_reason=MetadataValue.json(dict(outside))
        )
        return table_report(
            commit,
            [check],
            {
                **base,
                EVENT_DATES: MetadataValue.json(sorted({str(day) for day, _ in tally if day is not None})),
                "malformed_records": sum(n for (_, malformed), n in tally.items() if malformed),
                "undated_records": sum(n for (day, _), n in tally.items() if day is None),
            },
        )

    return raw_asset


raw_assets = [build_raw_asset(topic) for topic in TOPICS]
