"""Failure injection for the crash test: ingest raw listens, but keep the write from committing once
data files are on disk, so Delta never commits and the test's kill -9 lands between the two.

Run as `python -m medallion_assets_tests.hold_before_commit MARKER`; configured like the
pipeline, by environment variables. MARKER is created once data files exist and the write holds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from dagster import AssetSelection, DagsterInstance, materialize
from deltalake import DeltaTable

from medallion_assets.definitions import all_assets, resources
from medallion_assets.resources import warehouse
from medallion_assets.tables import RAW


def main(marker: Path) -> None:
    """Patch the raw write to flush a file per batch and hold after the last one, then run the listens' ingestion."""
    write = warehouse.write_deltalake

    def holding_write(table_or_uri, data, **options):  # noqa: ANN001, ANN003
        location = table_or_uri.table_uri if isinstance(table_or_uri, DeltaTable) else str(table_or_uri)
        table_dir = Path(location.removeprefix("file://"))

        def hold() -> Iterator[pa.RecordBatch]:
            yield from data
            while not any(table_dir.rglob("*.parquet")):  # the batches written so far
                time.sleep(0.05)
            marker.touch()
            time.sleep(3600)

        return write(table_or_uri, pa.RecordBatchReader.from_batches(data.schema, hold()), **{**options, "target_file_size": 1})

    warehouse.write_deltalake = holding_write
    selection = AssetSelection.assets(RAW["listen_events"].asset_key)
    materialize(all_assets, selection=selection, resources=resources, instance=DagsterInstance.ephemeral())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
