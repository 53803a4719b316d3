"""Failure injection for the crash test: ingest raw listens, but hold the Delta write once it has been
handed every record, before it can commit, so the test's kill -9 lands inside the write.

Run as `python -m medallion_assets_tests.hold_before_commit MARKER [arrow|spark]`; configured like the
pipeline, by environment variables (MEDALLION_RAW_ENGINE names the engine the second argument patches). MARKER is created once the write holds every record: on the
Arrow path delta-rs has been handed the last batch, on the Spark path a write task has written the
last row of its read task (the task then waits, so the job and its commit never finish).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pyarrow as pa
from dagster import AssetSelection, DagsterInstance, materialize

from medallion_assets.definitions import all_assets, resources
from medallion_assets.resources import warehouse
from medallion_assets.tables import RAW


def hold_after(marker: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches, then the marker, then a wait that outlasts the test (in Spark's Python worker: this
    module runs as __main__, so the function travels by value)."""
    yield from batches
    Path(marker).touch()
    time.sleep(3600)


def main(marker: Path, engine: str) -> None:
    """Patch the raw write of `engine` to hold after its last record, then run the listens' ingestion."""
    if engine == "spark":
        append = warehouse.WarehouseResource.append_once_with_spark

        def holding_append(self, table, df, app_id, version):  # noqa: ANN001, ANN202
            return append(self, table, df.mapInArrow(partial(hold_after, str(marker)), df.schema), app_id, version)

        warehouse.WarehouseResource.append_once_with_spark = holding_append
    else:
        write = warehouse.write_deltalake

        def holding_write(table_or_uri, data, **options):  # noqa: ANN001, ANN003
            return write(table_or_uri, pa.RecordBatchReader.from_batches(data.schema, hold_after(str(marker), data)), **options)

        warehouse.write_deltalake = holding_write
    selection = AssetSelection.assets(RAW["listen_events"].asset_key)
    materialize(all_assets, selection=selection, resources=resources, instance=DagsterInstance.ephemeral())


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "arrow")
