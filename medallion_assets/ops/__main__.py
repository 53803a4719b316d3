"""python -m medallion_assets.ops rollback RUN_ID [--dry-run] [--cascade]: undo what a run wrote."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dagster import DagsterInstance, EnvVar

from medallion_assets.ops.rollback import RollbackRefused, plan, rollback_job
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource

REFUSED = 2


def rollback(run_id: str, dry_run: bool, cascade: bool, accept_loss: bool) -> int:
    """Print the plan; unless a dry run, carry it out as a run of rollback_job. The exit status."""
    warehouse, kafka = WarehouseResource(), KafkaResource()
    try:
        planned = plan(warehouse, kafka, run_id, cascade, accept_loss)
    except RollbackRefused as refused:
        print(refused, file=sys.stderr)
        return REFUSED
    print("\n".join(planned.lines()))
    if planned.refused:
        return REFUSED
    if dry_run:
        print("Dry run: nothing changed.")
        return 0
    instance = DagsterInstance.get() if EnvVar("DAGSTER_HOME").get_value() else DagsterInstance.ephemeral()
    config = {"run_id": run_id, "cascade": cascade, "dry_run": False, "accept_loss": accept_loss}
    result = rollback_job.execute_in_process(
        run_config={"ops": {"rollback_run": {"config": config}}},
        resources={"warehouse": warehouse, "kafka": kafka},
        instance=instance,
        raise_on_error=False,
    )
    restored = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    print(f"Run {result.run_id} {'restored' if result.success else 'FAILED after restoring'} {len(restored)} tables.")
    return 0 if result.success else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command."""
    parser = argparse.ArgumentParser(prog="python -m medallion_assets.ops", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    undo = commands.add_parser(
        "rollback",
        help="restore every table a run changed to its version before it, downstream first",
        description="Restore every table a run changed to its version before the run (downstream first); raw's Kafka "
        "offsets go back with it, and each restored table gets a materialization. Exit status 2: refused.",
    )
    undo.add_argument("run_id", metavar="RUN_ID", help="the Dagster run whose changes to undo")
    undo.add_argument("--dry-run", action="store_true", help="print the plan (tables, versions, offsets) and change nothing")
    undo.add_argument("--cascade", action="store_true", help="also roll back the later runs that changed the same tables")
    undo.add_argument(
        "--accept-loss", action="store_true", help="go ahead although some records raw drops are gone from Kafka, or could not be checked"
    )
    args = parser.parse_args(argv)
    return rollback(args.run_id, args.dry_run, args.cascade, args.accept_loss)


if __name__ == "__main__":
    sys.exit(main())
