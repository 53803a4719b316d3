"""What a step reads from a table without Spark: its day partitions from the Delta log, a small table's
groups and totals with delta-rs (no JVM), and the one snapshot of each table a run shares."""

from datetime import date
from unittest.mock import patch

import pyarrow as pa
import pytest
from dagster import build_resources
from deltalake.exceptions import CommitFailedError

from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.tables import ARTIST_POPULARITY, QUARANTINE, RAW

pytestmark = pytest.mark.fast

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


def quarantine_rows(*rows: tuple) -> pa.RecordBatchReader:
    """Quarantine rows of (event_date, topic, reject_reason), the other columns null."""
    table = pa.Table.from_pylist(
        [{"event_date": d, "topic": t, "reject_reason": r, "kafka_offset": i} for i, (d, t, r) in enumerate(rows)],
        schema=QUARANTINE.arrow_schema(),
    )
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())


def test_day_partitions_and_groups_of_some_days(tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    assert warehouse.partition_days(QUARANTINE) == set() and warehouse.group_rows(QUARANTINE, [D1], ("topic",)) == {}
    rows = [(D1, "listen_events", "duplicate")] * 2 + [(D1, "auth_events", "malformed"), (D2, "listen_events", "duplicate"), (None, "auth_events", "no readable ts")]
    warehouse.append_once(QUARANTINE, quarantine_rows(*rows), {"test": 1})
    assert warehouse.partition_days(QUARANTINE) == {D1, D2, None}
    assert warehouse.group_rows(QUARANTINE, [D1], ("event_date", "topic", "reject_reason")) == {
        (D1, "listen_events", "duplicate"): 2,
        (D1, "auth_events", "malformed"): 1,
    }
    assert warehouse.group_rows(QUARANTINE, [D1, D2], ("topic",)) == {("listen_events",): 3, ("auth_events",): 1}


def test_a_column_total_over_the_whole_table(tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    rows = pa.Table.from_pylist([{"artistName": "a", "total_streams": 3}, {"artistName": "b", "total_streams": 4}], schema=ARTIST_POPULARITY.arrow_schema())
    warehouse.append(ARTIST_POPULARITY, rows)
    warehouse.append(ARTIST_POPULARITY, rows.slice(0, 1))
    assert warehouse.column_total(ARTIST_POPULARITY, "total_streams") == 10


def test_rows_on_days_add_up_the_tables_days_from_their_logs(tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    rows = [(D1, "listen_events", "duplicate")] * 3 + [(D2, "auth_events", "malformed"), (None, "auth_events", "no readable ts")]
    warehouse.append_once(QUARANTINE, quarantine_rows(*rows), {"test": 1})
    unwritten = RAW["listen_events"]  # a table not written yet holds no rows
    assert warehouse.rows_on_days([QUARANTINE, unwritten], [D1]) == 3
    assert warehouse.rows_on_days([QUARANTINE, unwritten], [D1, D2]) == 4
    assert warehouse.rows_on_days([QUARANTINE], None) is None  # a run over every day: unknown


def test_a_run_reads_each_table_as_of_its_first_look_or_its_own_last_write(tmp_path):
    """Within a run (resources set up) one snapshot per table is shared; outside a run every read is the latest."""
    rows = [(D1, "listen_events", "duplicate")] * 2
    other = WarehouseResource(root=str(tmp_path))  # another writer, outside any run
    other.append_once(QUARANTINE, quarantine_rows(*rows), {"other": 1})
    with build_resources({"warehouse": WarehouseResource(root=str(tmp_path))}) as resources:
        warehouse: WarehouseResource = resources.warehouse
        assert warehouse.day_rows(QUARANTINE, [D1]) == {D1: 2}
        other.append_once(QUARANTINE, quarantine_rows(*rows), {"other": 2})
        assert other.day_rows(QUARANTINE, [D1]) == {D1: 4}
        assert warehouse.day_rows(QUARANTINE, [D1]) == {D1: 2}  # the run's snapshot, not the other writer's commit
        assert warehouse.delta_rs(QUARANTINE, 1).version() == 1 and warehouse.delta_rs(QUARANTINE).version() == 0
        commit = warehouse.append_once(QUARANTINE, quarantine_rows(rows[0]), {"run": 1})
        assert (commit.version, commit.day_rows) == (2, {})  # its own commit moves the snapshot past the other's
        assert warehouse.day_rows(QUARANTINE, [D1]) == {D1: 5}
        other.append_once(QUARANTINE, quarantine_rows(*rows), {"other": 3})
        failures = iter([CommitFailedError("injected: a concurrent commit")])

        def conflicting_once() -> None:
            failure = next(failures, None)
            if failure is not None:
                raise failure

        with patch("medallion_assets.resources.warehouse.time.sleep"):
            warehouse._retrying(QUARANTINE, conflicting_once)
        assert warehouse.day_rows(QUARANTINE, [D1]) == {D1: 7}  # a conflict opens the table again
    assert WarehouseResource(root=str(tmp_path)).day_rows(QUARANTINE, [D1]) == {D1: 7}
