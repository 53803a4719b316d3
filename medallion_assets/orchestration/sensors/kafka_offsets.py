"""kafka_offsets_sensor: request one run when Kafka holds records that raw does not.

That run ingests the records and, in the same run, carries the days the newest of them fall on to
gold: the sensor reads the last new record of each partition (a handful of records, parsed as raw
parses them) and selects raw with every asset below it for the run of consecutive days holding the
newest one. Days other records fall on (late data) are left to raw_to_gold_sensor, which sees that
this run already rebuilt its own days. When no last record has a day in the partitions, the run
ingests only (ingest_job), and raw_to_gold_sensor carries its days.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone

from confluent_kafka import KafkaException
from dagster import (
    AssetKey,
    AssetObservation,
    ConfigurableResource,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    EnvVar,
    MetadataValue,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from pydantic import Field

from medallion_assets.orchestration.jobs import INGESTS_TAG, NOT_FINISHED_STATUSES, SENSOR_INTERVAL_S, WRITES_TAG, ingest_job, medallion_job
from medallion_assets.orchestration.partitions import contiguous_ranges, partition_bounds, range_tags
from medallion_assets.orchestration.sensors.raw_to_gold import current_reference_assets, resolved
from medallion_assets.raw.offsets import plan_ranges, raw_next_offsets
from medallion_assets.raw.parse import parse_records
from medallion_assets.resources.kafka import KafkaResource, KafkaUnavailableError
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.sources import TOPIC_ASSETS
from medallion_assets.tables import RAW
from medallion_assets.topics import TOPICS

TAG_PREFIX = "medallion/"
# Topics are observed (end offsets, lag) at most this often, so a busy stream does not flood the event log.
OBSERVE_INTERVAL_S = 60
# A tick below the threshold waits this long for records: the daemon starts sensor ticks every 5 s
# whatever their interval, so new records otherwise wait 2.5 s on average for a look; this leaves
# about a second for the rest of the tick and the other sensors.
WAIT_FOR_RECORDS_S = 4.0
# Unfinished ingesting runs looked at per tick (a batch run past its raw steps does not hold the next one).
PENDING_RUNS_LOOKED_AT = 10


class KafkaSensorSettings(ConfigurableResource):
    """Settings of kafka_offsets_sensor."""

    lag_threshold: int | None = Field(
        default=None,
        ge=1,
        description="Smallest total lag (records, all topics) that requests an ingestion run; "
        "env MEDALLION_KAFKA_LAG_THRESHOLD, default 1.",
    )
    broker_timeout_s: float = Field(
        default=5.0, gt=0, description="Seconds to wait for the broker before the tick skips, naming it."
    )
    wait_for_records_s: float = Field(
        default=WAIT_FOR_RECORDS_S,
        ge=0,
        le=30,
        description="Seconds a tick below the threshold waits for new records, looking again as soon as one "
        "arrives; 0 skips at once. Dagster's daemon starts a tick at most every 5 s, so the default keeps the "
        "sensor listening most of that time.",
    )

    @property
    def threshold(self) -> int:
        """The lag threshold in effect."""
        if self.lag_threshold is not None:
            return self.lag_threshold
        return max(1, int(EnvVar("MEDALLION_KAFKA_LAG_THRESHOLD").get_value(default="1") or 1))


@dataclass(frozen=True)
class TopicLag:
    """Where one topic's partitions stand: Kafka's watermarks, the next offset raw needs, the ranges."""

    topic: str
    physical_topic: str
    ranges: dict[int, tuple[int, int]]

    @property
    def lag(self) -> int:
        """Records Kafka holds that raw does not."""
        return sum(end - start for start, end in self.ranges.values())

    def observation(self) -> AssetObservation:
        """The topic's external asset observed: end offset per partition, their sum, and the lag."""
        return AssetObservation(
            asset_key=TOPIC_ASSETS[self.topic].key,
            metadata={
                "kafka_topic": self.physical_topic,
                "end_offsets": MetadataValue.json({str(p): end for p, (_, end) in sorted(self.ranges.items())}),
                "end_offset_total": sum(end for _, end in self.ranges.values()),
                "lag": self.lag,
            },
        )


def topic_lags(kafka: KafkaResource, warehouse: WarehouseResource, timeout_s: float) -> list[TopicLag]:
    """Lag of every topic: Kafka's end offsets against what raw holds."""
    offsets = kafka.topic_watermarks(TOPICS, timeout_s)
    lags = []
    for topic in TOPICS:
        held = raw_next_offsets(warehouse.delta_rs(RAW[topic]), kafka.topic(topic), offsets[topic])
        ranges = plan_ranges(offsets[topic], held)
        lags.append(TopicLag(topic, kafka.topic(topic), {r.partition: (r.start, r.end) for r in ranges}))
    return lags


def lags_once_due(kafka: KafkaResource, warehouse: WarehouseResource, settings: KafkaSensorSettings, lags: list[TopicLag]) -> list[TopicLag]:
    """The lags, looked at again each time a record arrives past Kafka's end offsets, until they reach the
    threshold or the tick has waited settings.wait_for_records_s."""
    deadline = time.monotonic() + settings.wait_for_records_s
    while sum(lag.lag for lag in lags) < settings.threshold and (left := deadline - time.monotonic()) > 0:
        ends = {lag.topic: {p: end for p, (_, end) in lag.ranges.items()} for lag in lags}
        if not kafka.wait_for_records(ends, left):
            break
        lags = topic_lags(kafka, warehouse, settings.broker_timeout_s)
    return lags


def ingest_run_key(lags: list[TopicLag]) -> str:
    """Run key of the offset ranges to ingest: the same ranges always give the same key."""
    ranges = {
        lag.physical_topic: {str(p): [start, end] for p, (start, end) in sorted(lag.ranges.items()) if end > start}
        for lag in lags
    }
    digest = hashlib.sha256(json.dumps(ranges, sort_keys=True).encode()).hexdigest()[:16]
    return f"ingest-{digest}"


def lag_tags(lags: list[TopicLag]) -> dict[str, str]:
    """Run tags with the lag per topic and in total."""
    return {
        **{f"{TAG_PREFIX}lag.{lag.topic}": str(lag.lag) for lag in lags},
        f"{TAG_PREFIX}lag_total": str(sum(lag.lag for lag in lags)),
    }


def _describe(lags: list[TopicLag]) -> str:
    return ", ".join(f"{lag.physical_topic}={lag.lag}" for lag in lags)


def ingested(instance: DagsterInstance, run: DagsterRun) -> bool:
    """Whether a running run has materialized every raw table it selects (its ingestion is committed)."""
    if run.status != DagsterRunStatus.STARTED:
        return False
    raw = {table.asset_key for table in RAW.values()}
    selected = raw & set(run.asset_selection) if run.asset_selection else raw
    records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    return selected <= {r.event_log_entry.dagster_event.asset_key for r in records if r.event_log_entry.dagster_event}


def _pending_ingestion(context: SensorEvaluationContext) -> str | None:
    """Id of a run that ingests (ingest_job, or a batch run this sensor asked for) and has not committed its
    ingestion yet: queued, starting, or running before its raw steps ended. A batch run past them is
    still rebuilding its days; the next batch's run may queue behind it."""
    statuses = list(NOT_FINISHED_STATUSES)
    for pending in (RunsFilter(job_name=ingest_job.name, statuses=statuses), RunsFilter(tags=INGESTS_TAG, statuses=statuses)):
        for run in context.instance.get_runs(pending, limit=PENDING_RUNS_LOOKED_AT):
            if not ingested(context.instance, run):
                return run.run_id
    return None


def newest_days(kafka: KafkaResource, lags: list[TopicLag]) -> set[date]:
    """Days (inside the partitions) of the last new record of each partition, parsed as raw parses it."""
    first, last = partition_bounds()
    days: set[date] = set()
    for lag in lags:
        newest = {p: (end - 1, end) for p, (start, end) in lag.ranges.items() if end > start}
        for records in kafka.read_records(lag.topic, newest) if newest else ():
            days.update(d for d in parse_records(records, lag.topic)["event_date"].to_pylist() if d is not None and first <= d <= last)
    return days


def batch_days(days: set[date]) -> tuple[date, date] | None:
    """The run of consecutive days that holds the newest of `days`; None without days."""
    return contiguous_ranges(days)[-1] if days else None


def batch_selection(context: SensorEvaluationContext) -> list[AssetKey] | None:
    """What a batch run selects: raw and everything below it but the reference dimensions that are current
    (everything, None, when the tick knows no code location)."""
    repository = context.repository_def
    if repository is None:
        return None
    current = current_reference_assets(context.instance, repository, datetime.now(timezone.utc).date())
    return sorted(resolved(medallion_job.selection, repository) - current, key=lambda k: k.to_user_string())


def ingestion_request(context: SensorEvaluationContext, kafka: KafkaResource, lags: list[TopicLag], run_key: str) -> RunRequest:
    """The run of the lag: a batch run (ingest and carry the newest days to gold), or ingest_job when no day is known."""
    try:
        span = batch_days(newest_days(kafka, lags))
    except (KafkaUnavailableError, KafkaException) as error:  # the run meets the broker as it is: ingest only
        context.log.warning(f"The newest records could not be read ({error}): this run only ingests")
        span = None
    if span is None:
        return RunRequest(run_key=run_key, job_name=ingest_job.name, tags=lag_tags(lags))
    context.log.info(f"The newest records fall on {span[0]} .. {span[1]}: one run ingests them and rebuilds those days")
    return RunRequest(
        run_key=run_key,
        job_name=medallion_job.name,
        asset_selection=batch_selection(context),
        tags={**lag_tags(lags), **range_tags(*span), **INGESTS_TAG, **WRITES_TAG},
    )


@sensor(
    jobs=[medallion_job, ingest_job],
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Compares each topic-partition's end offset with the highest offset raw holds and, when the total lag "
        "reaches the threshold, requests one run that ingests it and rebuilds the days of its newest records. "
        "Below the threshold, a tick waits a few seconds for new records and looks again as soon as one arrives."
    ),
)
def kafka_offsets_sensor(
    context: SensorEvaluationContext,
    kafka: KafkaResource,
    warehouse: WarehouseResource,
    kafka_sensor: KafkaSensorSettings,
) -> SensorResult | SkipReason:
    """One ingestion run per new set of end offsets; a tick replay gives the same run key."""
    try:
        lags = lags_once_due(kafka, warehouse, kafka_sensor, topic_lags(kafka, warehouse, kafka_sensor.broker_timeout_s))
    except KafkaUnavailableError as error:
        return SkipReason(f"Kafka unreachable: {error}")
    for lag in lags:
        context.log.info(f"Kafka lag of {lag.physical_topic}: {lag.lag} records")
    total = sum(lag.lag for lag in lags)
    run_key = ingest_run_key(lags)
    previous = json.loads(context.cursor) if context.cursor else {}
    requested = previous.get("run_key")
    now = time.time()
    observe = now - previous.get("observed_at", 0) >= OBSERVE_INTERVAL_S
    observations = [lag.observation() for lag in lags] if observe else []
    observed_at = now if observe else previous.get("observed_at", 0)

    def result(reason: str | None, key: str | None) -> SensorResult:
        cursor = json.dumps({"run_key": key, "lag": {lag.topic: lag.lag for lag in lags}, "observed_at": observed_at})
        if reason is None:
            run = ingestion_request(context, kafka, lags, run_key)
            return SensorResult(run_requests=[run], cursor=cursor, asset_events=observations)
        skip = SkipReason(f"{reason}; lag {_describe(lags)}")
        return SensorResult(skip_reason=skip, cursor=cursor, asset_events=observations)

    if total < kafka_sensor.threshold:
        return result(f"Kafka lag {total} below threshold {kafka_sensor.threshold}", None)
    if requested == run_key:
        return result(f"Ingestion of these offsets already requested (run key {run_key})", run_key)
    pending = _pending_ingestion(context)
    if pending is not None:
        return result(f"Ingestion run {pending} is still queued or running", requested)
    context.log.info(f"Requesting ingestion of {total} records (run key {run_key})")
    return result(None, run_key)
