"""The main job on a laptop: local Kafka, generated events, every asset materialized, a summary."""

from __future__ import annotations

import argparse
from datetime import timedelta

from dagster import DagsterInstance, EnvVar

from medallion_assets.dev.kafka_local import DEFAULT_PORT, default_home, ensure_broker
from medallion_assets.generator import GeneratorConfig, generate, write_kafka
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runs import materialize_days
from medallion_assets.tables import ALL_TABLES, QUALITY_LOG
from medallion_assets.topics import TOPICS, client_settings


def table_rows(warehouse: WarehouseResource) -> list[tuple[str, int, str]]:
    """(asset, rows, location) of every table, read with delta-rs (from a bucket too)."""
    rows = []
    for table in (*ALL_TABLES, QUALITY_LOG):
        delta = warehouse.delta_rs(table)
        if delta is None:
            raise RuntimeError(f"{table.path}: no Delta table at {warehouse.uri(table)} after the run")
        rows.append((table.path, delta.to_pyarrow_dataset().count_rows(), warehouse.uri(table)))
    return rows


def main() -> None:
    """Start Kafka, produce a few days of events, materialize everything, print what was built."""
    parser = argparse.ArgumentParser(
        prog="python -m medallion_assets.demo", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100, help="listeners to simulate")
    parser.add_argument("--days", type=int, default=3, help="days of events, the last one today (UTC)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generator")
    parser.add_argument("--dialect", default="eventsim", choices=("eventsim", "seed"), help="event format (see the generator)")
    args = parser.parse_args()

    settings = client_settings()
    if settings["bootstrap.servers"] == f"127.0.0.1:{DEFAULT_PORT}":
        ensure_broker(default_home(), DEFAULT_PORT, topics=TOPICS)
    kafka = KafkaResource(duration_unit="milliseconds" if args.dialect == "seed" else "seconds")
    config = GeneratorConfig(
        users=args.users, days=args.days, seed=args.seed, dialect=args.dialect, topic_prefix=kafka.topic("")
    ).resolved()
    report = write_kafka(generate(config), settings)
    print(f"Produced {report.total_events} events: {dict(report.events_per_topic)}")

    first, last = config.start_date, config.start_date + timedelta(days=args.days - 1)
    instance = DagsterInstance.get() if EnvVar("DAGSTER_HOME").get_value() else DagsterInstance.ephemeral()
    result = materialize_days(first, last, resources={"kafka": kafka}, instance=instance)
    print(f"\nRun {result.run_id} materialized partitions {first} .. {last}\n")
    warehouse = WarehouseResource()
    for path, count, _ in table_rows(warehouse):
        print(f"  {path:<34} {count:>9} rows")
    print(f"\nDelta tables under {warehouse.root_uri}")
    print("Open the Dagster UI with `make dev` (http://127.0.0.1:3000).")
    print(f"What undoing this run would do: python -m medallion_assets.ops rollback {result.run_id} --dry-run")


if __name__ == "__main__":
    main()
