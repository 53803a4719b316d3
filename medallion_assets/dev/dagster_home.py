"""The local Dagster instance: the project's dagster.yaml, written into a Dagster home.

The configuration is medallion_assets/dev/conf/dagster.yaml: the run queue launches one run that
writes below raw at a time (concurrency pools), and runs, event logs and schedules live in SQLite
files in the home. With `--storage postgres` they live in PostgreSQL instead (conf/storage-postgres.yaml),
reached through the DAGSTER_POSTGRES_* variables that `python -m medallion_assets.dev.postgres up` prints.

CLI::

    python -m medallion_assets.dev.dagster_home [--home DIR] [--storage sqlite|postgres]

`make dev` and `make demo` run it before they start, so the home always holds what the project ships.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from dagster import EnvVar

from medallion_assets.paths import REPO_ROOT

CONF = Path(__file__).with_name("conf")
STORAGES = {"sqlite": (), "postgres": ("storage-postgres.yaml",)}
STORAGE_VARIABLE = "MEDALLION_DAGSTER_STORAGE"
DEFAULT_HOME = REPO_ROOT / ".dagster_home"
HEADER = "# Written by `python -m medallion_assets.dev.dagster_home` from medallion_assets/dev/conf; edit those files.\n\n"


def instance_yaml(storage: str) -> str:
    """The text of the instance's dagster.yaml: the shipped settings and the storage's own section."""
    parts = ("dagster.yaml", *STORAGES[storage])
    return HEADER + "\n".join((CONF / part).read_text() for part in parts)


def instance_config(storage: str) -> dict[str, Any]:
    """The instance's settings, as Dagster reads them."""
    return yaml.safe_load(instance_yaml(storage))


def write(home: Path, storage: str) -> Path:
    """Write the instance's dagster.yaml into the home; its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(instance_yaml(storage))
    return path


def main(argv: list[str] | None = None) -> int:
    """Write the home's dagster.yaml."""
    parser = argparse.ArgumentParser(prog="python -m medallion_assets.dev.dagster_home", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--home", type=Path, default=Path(EnvVar("DAGSTER_HOME").get_value() or DEFAULT_HOME),
        help=f"the Dagster home (default $DAGSTER_HOME, else {DEFAULT_HOME})",
    )
    parser.add_argument(
        "--storage", choices=sorted(STORAGES), default=EnvVar(STORAGE_VARIABLE).get_value() or "sqlite",
        help=f"where runs, event logs and schedules live (default ${STORAGE_VARIABLE}, else sqlite)",
    )
    args = parser.parse_args(argv)
    if args.storage not in STORAGES:
        parser.error(f"{STORAGE_VARIABLE}={args.storage}: choose one of {sorted(STORAGES)}")
    print(f"{write(args.home.resolve(), args.storage)} ({args.storage} storage)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
