"""Plain-PySpark baseline for the benchmark: the pipeline's tables from the same Kafka topics, without Dagster.

Raw is parsed as an expert writes it with Spark alone (`from_json`, no Python worker); below raw
the same transforms as the assets (the project's pure functions in bronze/transform.py,
silver/*.py and gold/*.py), with none of what the orchestration adds: no
Dagster run, no asset checks, no materialization metadata, no quarantine table, no commit
lookups or row counts from the Delta log. Drop expectations still filter rows, because they
decide what the tables hold. Like the pipeline, every layer is written to Delta and the next
layer reads it back. Tooling only: the code location (definitions.py) does not import it.

`python -m medallion_assets.baseline` runs it in a process of its own, its Spark session started
cold as a plain PySpark job's is; the benchmark times it so, next to its run on the pipeline's
warm session.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_assets.bronze.transform import classify, to_bronze
from medallion_assets.gold.facts import build_fact_stream, build_wide_fact
from medallion_assets.gold.summaries import artist_popularity, daily_location_summary, daily_user_summary
from medallion_assets.orchestration.partitions import daily_partitions
from medallion_assets.quality.expectations import expectations_for, first_violation
from medallion_assets.raw.days import epoch_ms_to_timestamp
from medallion_assets.reference import read_reference_csv, well_formed
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.spark import SparkResource
from medallion_assets.schemas import SONGS_CSV_COLUMNS, STATE_CODES_CSV_COLUMNS, TOPICS, event_fields
from medallion_assets.silver.dim_datetime import build_dim_datetime
from medallion_assets.silver.dim_location import build_dim_location, locations
from medallion_assets.silver.dim_users import build_dim_users
from medallion_assets.silver.songs import artist_rows, build_dim_artists, build_dim_songs, song_rows
from medallion_assets import tables as t
from medallion_assets.tables import Table

LAYERS: tuple[str, ...] = ("raw", "bronze", "silver", "gold")
# The tables the baseline writes: every table of the pipeline except bronze/quarantine.
TABLES: tuple[Table, ...] = tuple(table for table in t.ALL_TABLES if table != t.QUARANTINE)


class Baseline:
    """The pipeline's tables under `root`, computed with plain PySpark from the topics of `kafka`."""

    def __init__(
        self, spark: SparkSession, kafka: KafkaResource, root: Path, songs_csv: str, state_codes_csv: str
    ) -> None:
        self.spark = spark
        self.kafka = kafka
        self.root = root
        self.songs_csv = songs_csv
        self.state_codes_csv = state_codes_csv

    def uri(self, table: Table) -> str:
        """Location of a table: <root>/<layer>/<name>."""
        return str(self.root / table.path)

    def read(self, table: Table, days: Sequence[date] | None = None) -> DataFrame:
        """A table written before, only the given days of a daily one."""
        df = self.spark.read.format("delta").load(self.uri(table))
        return df.where(F.col(table.partition_column).isin(list(days))) if days is not None else df

    def write(self, table: Table, df: DataFrame) -> None:
        """Overwrite a table; a daily one with one file per day, as the pipeline writes it."""
        if table.partition_column is not None:
            df = df.repartition(table.partition_column)
        writer = df.write.format("delta").mode("overwrite")
        if table.partition_column is not None:
            writer = writer.partitionBy(table.partition_column)
        writer.save(self.uri(table))

    # -- layers ---------------------------------------------------------------------------------

    def raw(self, days: Sequence[date]) -> None:
        """Every record of the four topics, parsed with Spark's own functions (Spark's Kafka batch source,
        earliest to latest; `from_json`, no Python worker)."""
        for topic in TOPICS:
            records = self.kafka.read_batch(self.spark, topic)
            (
                native_raw_rows(records, topic)
                .write.format("delta").mode("overwrite").partitionBy("event_date").save(self.uri(t.RAW[topic]))
            )

    def bronze(self, days: Sequence[date]) -> None:
        """Valid events of the days (ts and userId present, sane duration), deduplicated."""
        for topic in TOPICS:
            self.write(t.BRONZE[topic], to_bronze(classify(self.read(t.RAW[topic], days), topic, self.kafka.duration_unit), topic))

    def silver(self, days: Sequence[date]) -> None:
        """The five dimensions, each filtered by its drop expectations."""
        bronze = [self.read(t.BRONZE[topic]) for topic in TOPICS]
        self.write(t.DIM_USERS, kept(build_dim_users(bronze), t.DIM_USERS))
        states_csv = read_reference_csv(self.spark, self.state_codes_csv, STATE_CODES_CSV_COLUMNS)
        states, _ = well_formed(states_csv)
        listens = self.read(t.BRONZE["listen_events"])
        self.write(t.DIM_LOCATION, build_dim_location(kept(locations(listens), t.DIM_LOCATION), states))
        songs_csv = read_reference_csv(self.spark, self.songs_csv, SONGS_CSV_COLUMNS)
        songs = song_rows(well_formed(songs_csv)[0])
        self.write(t.DIM_SONGS, build_dim_songs(kept(songs, t.DIM_SONGS)))
        self.write(t.DIM_ARTISTS, build_dim_artists(kept(artist_rows(songs), t.DIM_ARTISTS)))
        windows = daily_partitions.get_partition_keys()
        start = daily_partitions.time_window_for_partition_key(windows[0]).start
        end = daily_partitions.time_window_for_partition_key(windows[-1]).end
        self.write(t.DIM_DATETIME, kept(build_dim_datetime(self.spark, start, end), t.DIM_DATETIME))
        for cached in (states_csv, songs_csv):
            cached.unpersist()

    def gold(self, days: Sequence[date]) -> None:
        """fact_stream and wide_fact of the days, the two daily summaries and artist_popularity."""
        users, songs, artists, places, hours = (
            self.read(dim) for dim in (t.DIM_USERS, t.DIM_SONGS, t.DIM_ARTISTS, t.DIM_LOCATION, t.DIM_DATETIME)
        )
        self.write(t.FACT_STREAM, build_fact_stream(self.read(t.BRONZE["listen_events"], days), users, songs, artists, places))
        self.write(t.WIDE_FACT, build_wide_fact(self.read(t.FACT_STREAM, days), users, songs, artists, places, hours))
        wide = self.read(t.WIDE_FACT, days)
        self.write(t.DAILY_USER_SUMMARY, daily_user_summary(wide))
        self.write(t.DAILY_LOCATION_SUMMARY, daily_location_summary(wide))
        self.write(t.ARTIST_POPULARITY, artist_popularity(self.read(t.WIDE_FACT)))

    def run(self, days: Sequence[date]) -> dict[str, float]:
        """Build every layer for the days; wall-clock seconds per layer."""
        steps: dict[str, Callable[[Sequence[date]], None]] = {
            "raw": self.raw, "bronze": self.bronze, "silver": self.silver, "gold": self.gold,
        }
        seconds = {}
        for layer in LAYERS:
            started = time.perf_counter()
            steps[layer](days)
            seconds[layer] = round(time.perf_counter() - started, 2)
        return seconds

    def table_rows(self) -> dict[str, int]:
        """Rows of every table written, from the Delta log (delta-rs, no Spark job)."""
        rows = {}
        for table in TABLES:
            files = pa.table(DeltaTable(self.uri(table)).get_add_actions(flatten=True))
            rows[table.path] = int(pc.sum(files["num_records"]).as_py() or 0) if files.num_rows else 0
        return rows


def native_raw_rows(records: DataFrame, topic: str) -> DataFrame:
    """Raw's columns from Spark's Kafka source rows, as an expert writes it without the project: `from_json`
    with the events' types. Well-formed events get the same rows as the pipeline's parse; the malformed
    ones it does not tell apart (`parse_error` says only that a message is not a JSON object)."""
    fields = event_fields(topic)
    text = F.col("value").cast("string")
    parsed = F.from_json(text, ", ".join(f"`{name}` {dtype.simpleString()}" for name, dtype in fields.items()))
    columns = {
        "kafka_topic": F.col("topic"),
        "kafka_partition": F.col("partition"),
        "kafka_offset": F.col("offset"),
        "kafka_timestamp": F.col("timestamp"),
        "kafka_key": F.col("key").cast("string"),
        "value": text,
        "value_bytes": F.lit(None).cast("binary"),
        **{name: F.col("_event")[name] for name in fields},
        "parse_error": F.when(F.col("_event").isNull(), F.lit("invalid JSON object")),
        "rescued": F.lit(None),  # the pipeline's schema-drift column: nothing an expert's raw would compute
        "event_date": F.to_date(epoch_ms_to_timestamp(F.col("_event")["ts"])),
        "ingestion_timestamp": F.current_timestamp(),
    }
    raw = t.RAW[topic]
    return records.withColumn("_event", parsed).select(*[columns[c.name].cast(c.type).alias(c.name) for c in raw.columns])


def kept(rows: DataFrame, table: Table) -> DataFrame:
    """The rows that pass the table's drop expectations (all of them when it has none)."""
    rules = expectations_for(table, "drop")
    return rows.where(first_violation(rules).isNull()) if rules else rows


def main(argv: Sequence[str] | None = None) -> None:
    """Start Spark, build every table of the days from the topics, print the seconds as `BASELINE_JSON {...}`."""
    parser = argparse.ArgumentParser(prog="python -m medallion_assets.baseline", description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic-prefix", default="", help="prefix of the four topics")
    parser.add_argument("--root", required=True, type=Path, help="directory to write the tables under")
    parser.add_argument("--first-day", required=True, type=date.fromisoformat, help="first day of the events (YYYY-MM-DD)")
    parser.add_argument("--days", required=True, type=int, help="days of events from --first-day")
    parser.add_argument("--songs-csv", required=True, help="songs.csv location")
    parser.add_argument("--state-codes-csv", required=True, help="state_codes.csv location")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    spark = SparkResource().session
    spark_start = time.perf_counter() - started
    kafka = KafkaResource(bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix)
    baseline = Baseline(spark, kafka, args.root, args.songs_csv, args.state_codes_csv)
    days = [args.first_day + timedelta(days=i) for i in range(args.days)]
    started = time.perf_counter()
    layers = baseline.run(days)
    seconds = time.perf_counter() - started
    figures = {"spark_start_seconds": round(spark_start, 2), "seconds": round(seconds, 2), "layers": layers, "rows": baseline.table_rows()}
    print("BASELINE_JSON " + json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
