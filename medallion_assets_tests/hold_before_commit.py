"""Failure injection for the crash test: ingest raw listens, but hold every write task after its
rows are in the data files and before Delta can commit, so the test's kill -9 lands there.

Run as `python -m medallion_assets_tests.hold_before_commit MARKER`; configured like the
pipeline, by environment variables. MARKER is created once a task is holding.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from dagster import AssetSelection, DagsterInstance, materialize

from medallion_assets.definitions import all_assets, resources
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.tables import RAW


def main(marker: Path) -> None:
    """Patch the raw append so its tasks hold after their rows, then run the listens' ingestion."""
    append_once = WarehouseResource.append_once

    def rows_then_hold(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from batches
        marker.touch()
        time.sleep(3600)

    def holding_append(self, table, df, app_id, version):  # noqa: ANN001
        return append_once(self, table, df.mapInArrow(rows_then_hold, df.schema), app_id, version)

    WarehouseResource.append_once = holding_append
    selection = AssetSelection.assets(RAW["listen_events"].asset_key)
    materialize(all_assets, selection=selection, resources=resources, instance=DagsterInstance.ephemeral())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
