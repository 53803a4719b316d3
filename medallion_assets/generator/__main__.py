"""Command line: simulate events and write them to Kafka or to JSON-lines files, then print the report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from medallion_assets.generator.model import DIALECTS, GeneratorConfig
from medallion_assets.generator.report import GenerationReport
from medallion_assets.generator.simulator import generate
from medallion_assets.generator.sinks import KafkaWriteError, write_jsonl, write_kafka
from medallion_assets.topics import DEFAULT_BOOTSTRAP, client_settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m medallion_assets.generator", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--users", type=int, default=defaults.users, help="listeners to simulate")
    parser.add_argument("--days", type=int, default=defaults.days, help="days of listening, one after another")
    parser.add_argument("--start-date", type=date.fromisoformat, help="YYYY-MM-DD; unset: the last day is today, UTC")
    parser.add_argument(
        "--dialect", choices=sorted(DIALECTS), default=defaults.dialect,
        help="eventsim: numeric ids, durations in seconds; seed: string ids, durations in ms, status-change fields",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="the same seed and options give byte-identical events")
    parser.add_argument(
        "--defect-rate", type=float, default=defaults.defect_rate,
        help="share of events made defective (bad JSON, wrong types, missing fields), each kind counted in the report",
    )
    parser.add_argument("--max-events", type=int, help="stop after exactly this many events")
    parser.add_argument("--topic-prefix", default=defaults.topic_prefix, help="prepended to the four topic names")
    parser.add_argument("--songs-csv", type=Path, default=defaults.songs_csv, help="the catalogue songs are drawn from")
    parser.add_argument("--output", default="kafka", help="'kafka' or a directory for <topic>.jsonl files")
    parser.add_argument("--bootstrap-servers", help=f"unset: $KAFKA_BOOTSTRAP_SERVERS or {DEFAULT_BOOTSTRAP}")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; 0 on success, 1 when Kafka could not take the events."""
    args = parse_args(argv)
    config = GeneratorConfig(
        users=args.users, days=args.days, start_date=args.start_date, dialect=args.dialect, seed=args.seed,
        defect_rate=args.defect_rate, max_events=args.max_events, songs_csv=args.songs_csv,
        topic_prefix=args.topic_prefix,
    ).resolved()
    report = GenerationReport.for_config(config)
    events = generate(config)
    progress = not args.no_progress
    try:
        if args.output == "kafka":
            write_kafka(events, client_settings(args.bootstrap_servers), report, progress, config.max_events)
        else:
            write_jsonl(events, Path(args.output), report, progress, config.max_events)
    except KafkaWriteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
