"""Failure injection for the crash test: ingest raw listens, but keep the write job from finishing
once data files are on disk, so Delta never commits and the test's kill -9 lands between the two.

Run as `python -m medallion_assets_tests.hold_before_commit MARKER`; configured like the
pipeline, by environment variables. MARKER is created once data files exist and the job holds.
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
    """Patch the raw append with one extra, rowless task that holds the job, then run the listens' ingestion."""
    append_once = WarehouseResource.append_once

    def holding_append(self, table, df, app_id, version):  # noqa: ANN001
        table_dir = Path(self.uri(table))

        def hold(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for _ in batches:
                pass
            while not any(table_dir.rglob("*.parquet")):  # the other tasks' data files
                time.sleep(0.05)
            marker.touch()
            time.sleep(3600)
            yield from ()

        holder = df.sparkSession.range(1).mapInArrow(hold, df.schema)  # the last task of the write: no rows
        return append_once(self, table, df.unionByName(holder), app_id, version)

    WarehouseResource.append_once = holding_append
    selection = AssetSelection.assets(RAW["listen_events"].asset_key)
    materialize(all_assets, selection=selection, resources=resources, instance=DagsterInstance.ephemeral())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
