"""Failure injection for the crash test: ingest raw listens, but hold the Delta write once it has been
handed every record, before it can commit, so the test's kill -9 lands inside the write.

Run as `python -m medallion_assets_tests.hold_before_commit MARKER`; configured like the
pipeline, by environment variables. MARKER is created once the write holds every record.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from dagster import AssetSelection, DagsterInstance, materialize

from medallion_assets.definitions import all_assets, resources
from medallion_assets.resources import warehouse
from medallion_assets.tables import RAW


def main(marker: Path) -> None:
    """Patch the raw write to hold after its last record, then run the listens' ingestion."""
    write = warehouse.write_deltalake

    def holding_write(table_or_uri, data, **options):  # noqa: ANN001, ANN003
        def hold() -> Iterator[pa.RecordBatch]:
            yield from data
            marker.touch()
            time.sleep(3600)

        return write(table_or_uri, pa.RecordBatchReader.from_batches(data.schema, hold()), **options)

    warehouse.write_deltalake = holding_write
    selection = AssetSelection.assets(RAW["listen_events"].asset_key)
    materialize(all_assets, selection=selection, resources=resources, instance=DagsterInstance.ephemeral())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
