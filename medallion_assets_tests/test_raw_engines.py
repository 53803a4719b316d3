"""Raw's two engines: the in-process Arrow path and Spark's Kafka source write one table, row for row,
and either continues exactly where the other stopped."""

from __future__ import annotations

import json
from datetime import date

import pytest
from deltalake import DeltaTable

from medallion_assets.generator import Event, GeneratorConfig, generate
from medallion_assets.raw.offsets import partition_app_id
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import RAW
from medallion_assets_tests.events import event
from medallion_assets_tests.pipeline import LivePipeline

FIRST = date(2024, 9, 1)
# Set by the write itself, so two ingestions of the same records differ there and nowhere else.
WRITE_TIME_COLUMNS = ("ingestion_timestamp",)
LISTENS = "listen_events"


def edge_cases() -> list[Event]:
    """Listens no generator sends: bad JSON, not UTF-8, no value, wrong and odd types, days outside the partitions."""
    values: list[bytes | None] = [
        b"{not json",
        b"[1, 2]",
        b'{"ts": 1725181200000, "userId": "\xff\xfe"}',
        json.dumps(event("2024-09-01T10:00:00", ts="yesterday")).encode(),
        json.dumps(event("2024-09-01T10:00:00", userId={"id": 7})).encode(),
        json.dumps(event("2024-09-01T10:00:00", song="[Untitled]", duration="0x10", itemInSession="1_0")).encode(),
        json.dumps(event("2024-09-01T10:00:00", duration="NaN", lat="Infinity", extra="kept")).encode(),
        json.dumps(event("1999-01-01T00:00:00")).encode(),
        json.dumps(event("2999-01-01T00:00:00")).encode(),
        b"",
        None,
    ]
    return [Event(LISTENS, b"7" if i % 2 else None, value) for i, value in enumerate(values)]  # type: ignore[arg-type]


def events(seed: int, start: date = FIRST) -> list[Event]:
    """Two days of generated events with defects of every kind."""
    return list(generate(GeneratorConfig(users=6, days=2, start_date=start, seed=seed, defect_rate=0.05)))


def ingest_on(pipeline: LivePipeline, engine: str) -> dict[str, dict]:
    """One raw run on `engine`; each raw table's materialization metadata (values) by topic."""
    result = pipeline.on_engine(engine).ingest()
    assert result.success
    return {
        e.asset_key.path[-1]: {k: v.value for k, v in e.step_materialization_data.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def rows_of(spark, pipeline: LivePipeline, topic: str):  # noqa: ANN001, ANN201
    """A raw table read by Spark, write-time columns aside."""
    return spark.read.format("delta").load(pipeline.uri(RAW[topic])).drop(*WRITE_TIME_COLUMNS)


def test_both_engines_write_the_same_raw_tables_row_for_row(kafka_bootstrap, spark, tmp_path):
    arrow = LivePipeline.create(kafka_bootstrap, tmp_path / "arrow")
    produced = events(seed=21) + edge_cases()
    arrow.produce(produced)
    on_spark = arrow.sharing_topics(tmp_path / "spark")
    by_arrow, by_spark = ingest_on(arrow, "arrow"), ingest_on(on_spark, "spark")

    for topic in TOPICS:
        left, right = rows_of(spark, arrow, topic), rows_of(spark, on_spark, topic)
        assert left.schema == right.schema, topic
        count = sum(e.topic == topic for e in produced)
        assert left.count() == right.count() == count, topic
        assert left.exceptAll(right).count() == 0 and right.exceptAll(left).count() == 0, topic
        for metadata in (by_arrow[topic], by_spark[topic]):
            assert metadata["records_ingested"] == count
        assert (by_arrow[topic]["raw_engine"], by_arrow[topic]["spark_jobs"]) == ("arrow", 0)
        assert by_spark[topic]["raw_engine"] == "spark" and by_spark[topic]["spark_jobs"] > 0
        # the same day tally and the same per-partition transactions, so downstream and the next run see no difference
        for key in ("event_dates", "malformed_records", "undated_records"):
            assert by_arrow[topic][key] == by_spark[topic][key], (topic, key)
        assert transactions(arrow, topic) == transactions(on_spark, topic)
    malformed = rows_of(spark, on_spark, LISTENS).where("parse_error IS NOT NULL").count()
    assert malformed >= 8  # the edge cases' bad JSON, bytes, types and empty messages are rows too


def transactions(pipeline: LivePipeline, topic: str) -> dict[int, int]:
    """The offset the raw table holds up to per Kafka partition (0..2), from its transactions: 0 when it
    has none (the Arrow path records one for an empty partition too, Spark writes nothing for it)."""
    table = DeltaTable(pipeline.uri(RAW[topic]))
    return {p: table.transaction_version(partition_app_id(pipeline.prefix + topic, p)) or 0 for p in range(3)}


def test_switching_engines_mid_stream_leaves_every_record_once(kafka_bootstrap, spark, tmp_path):
    pipeline = LivePipeline.create(kafka_bootstrap, tmp_path / "warehouse")
    produced: list[Event] = []
    for step, engine in enumerate(("arrow", "spark", "arrow", "spark")):
        batch = events(seed=30 + step, start=date(2024, 9, 1 + 2 * step))
        pipeline.produce(batch)
        produced += batch
        metadata = ingest_on(pipeline, engine)
        assert sum(m["records_ingested"] for m in metadata.values()) == len(batch), engine
    assert ingest_on(pipeline, "spark")[LISTENS]["records_ingested"] == 0  # nothing new, nothing twice
    for topic in TOPICS:
        raw = spark.read.format("delta").load(pipeline.uri(RAW[topic]))
        expected = sum(e.topic == topic for e in produced)
        assert raw.count() == expected, topic
        assert raw.select("kafka_partition", "kafka_offset").distinct().count() == expected, topic


@pytest.mark.fast
def test_a_bad_engine_name_fails_naming_the_variable(monkeypatch):
    monkeypatch.setenv("MEDALLION_RAW_ENGINE", "flink")
    with pytest.raises(ValueError, match=r"MEDALLION_RAW_ENGINE\)=.flink."):
        KafkaResource().engine(spark_is_local=True)


@pytest.mark.fast
@pytest.mark.parametrize(
    ("setting", "local", "engine"),
    [(None, True, "arrow"), (None, False, "spark"), ("auto", False, "spark"), ("spark", True, "spark"), ("arrow", False, "arrow")],
)
def test_auto_follows_where_spark_runs(setting, local, engine, monkeypatch):
    monkeypatch.delenv("MEDALLION_RAW_ENGINE", raising=False)
    assert KafkaResource(raw_engine=setting).engine(spark_is_local=local) == engine
