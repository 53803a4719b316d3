"""The warehouse's reads and commits through Spark.

A table read through the warehouse gives what Spark's Delta reader gives (rows, columns, their order and
types): of some days, at a version, after a column was added, over a day with no files; a table whose
protocol needs more than a plain reader is read by Spark's Delta reader. MERGEs on threads of one session
each name their own commit. A small step's day writes and MERGEs, committed by delta-rs, leave what
Spark's Delta writer and Delta SQL leave. Within a run, a read is built once per snapshot and days, and
a write, by Spark or delta-rs, is read right after it commits. Jobs side by side that fill one cache
log no warning."""

import subprocess
import sys
import time
from datetime import date

from dagster import build_resources
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion_assets.resources.spark import side_by_side
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.tables import Table

D1, D2, D3 = date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)
EVENTS = Table("bronze", "events", "one row per event", partition_column="event_date")
ARTISTS = Table("silver", "artists", "one row per artist", key=("artistKey",))


def rows(df: DataFrame) -> list[tuple]:
    """Every row, in a stable order."""
    return sorted(tuple(r) for r in df.collect())


def delta_read(spark, warehouse: WarehouseResource, table, version: int, days=None) -> DataFrame:
    """Spark's own Delta reader: the oracle."""
    df = spark.read.format("delta").option("versionAsOf", version).load(warehouse.uri(table))
    return df.where(F.col(table.partition_column).isin(days)) if days else df


def test_reads_equal_sparks_delta_reader(spark, tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    first = spark.createDataFrame([(1, "a", D1), (2, "b", D2), (3, None, D2)], "kafka_offset bigint, userId string, event_date date")
    warehouse.replace_days(EVENTS, first, [D1, D2])
    # a second write adds a column (older rows hold null) and replaces one day
    second = spark.createDataFrame([(4, "d", "x", D2)], "kafka_offset bigint, userId string, city string, event_date date")
    warehouse.replace_days(EVENTS, second, [D2])
    latest = warehouse.version(EVENTS)
    for version in (latest - 1, latest):
        for days in (None, [D1], [D1, D2]):
            ours, oracle = warehouse.read(EVENTS, days, version if version < latest else None), delta_read(spark, warehouse, EVENTS, version, days)
            assert ours.schema.simpleString() == oracle.schema.simpleString()
            assert rows(ours) == rows(oracle)
    assert rows(warehouse.read(EVENTS, [D1, D2])) == [(1, "a", D1, None), (4, "d", D2, "x")]
    empty = warehouse.read(EVENTS, [D3])  # a day with no files
    assert empty.count() == 0 and empty.schema.simpleString() == delta_read(spark, warehouse, EVENTS, latest).schema.simpleString()


def test_a_table_with_deletion_vectors_is_read_by_sparks_delta_reader(spark, tmp_path):
    """Its files still hold the deleted rows: only a reader of the deletion vectors leaves them out."""
    warehouse = WarehouseResource(root=str(tmp_path))
    warehouse.overwrite(ARTISTS, spark.createDataFrame([(f"k{i}", f"artist {i}") for i in range(5)], "artistKey string, name string"))
    name = warehouse.sql_name(ARTISTS)
    spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')").collect()
    spark.sql(f"DELETE FROM {name} WHERE artistKey IN ('k1', 'k3')").collect()
    assert warehouse.delta_rs(ARTISTS).protocol().min_reader_version > 1
    assert rows(warehouse.read(ARTISTS)) == [("k0", "artist 0"), ("k2", "artist 2"), ("k4", "artist 4")]


def test_merges_side_by_side_each_name_their_own_commit(spark, tmp_path):
    """The first MERGE's source is slow, so the second runs, and ends, while the first is still running."""
    warehouse = WarehouseResource(root=str(tmp_path))
    tables = [Table("silver", name, "one row per key", key=("k",)) for name in ("slow", "fast")]
    for table in tables:
        warehouse.overwrite(table, spark.createDataFrame([("a", 1)], "k string, v int"))
    slow = F.udf(lambda v: time.sleep(2) or v, "int")
    sources = [spark.createDataFrame([("a", 2), ("b", 3)], "k string, v int")]
    sources = [sources[0].withColumn("v", slow("v")), sources[0]]

    def merge(table: Table, source: DataFrame):
        if table.name == "fast":
            time.sleep(0.5)  # starts once the slow one runs
        return warehouse.merge(table, source, ["k"])

    commits = side_by_side(spark, [lambda t=t, s=s: merge(t, s) for t, s in zip(tables, sources)])
    assert [c.version for c in commits] == [1, 1] and [c.operation for c in commits] == ["MERGE", "MERGE"]
    for table in tables:
        assert rows(warehouse.read(table)) == [("a", 2), ("b", 3)]


# Two jobs side by side fill one cache, then the block manager logs that warning and another, in a
# session of the pipeline's own: the JVM writes its log to the stderr it started with.
SHARED_CACHE = """
from pyspark.sql import functions as F
from medallion_assets.resources.spark import build_session, side_by_side
spark = build_session(shuffle_partitions=2, driver_memory="1g")
hashes = spark.range(0, 3_000_000, 1, 1).select(F.sha2(F.col("id").cast("string"), 256).alias("h")).cache()
counted, (longest,) = side_by_side(spark, [hashes.count, lambda: hashes.agg(F.max(F.length("h"))).collect()])
print(counted, longest[0])
blocks = spark._jvm.org.apache.logging.log4j.LogManager.getLogger("org.apache.spark.storage.BlockManager")
blocks.warn("Block rdd_0_0 already exists on this machine; not re-adding it")
blocks.warn("a warning of the block manager")
spark.stop()
"""


def test_jobs_side_by_side_that_fill_one_cache_log_no_warning():
    """The second job's task waits for the block the first job's task is writing and reads it: Spark logs
    that it does not add the block again, which the session's log configuration keeps out; the block
    manager's other warnings still show."""
    done = subprocess.run([sys.executable, "-c", SHARED_CACHE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["3000000", "64"]
    assert "not re-adding" not in done.stderr
    assert "WARN BlockManager: a warning of the block manager" in done.stderr


def test_few_rows_committed_by_delta_rs_leave_what_sparks_writer_leaves(spark, tmp_path):
    """The same day writes into two tables, one through Spark's Delta writer and one within
    `writing_few_rows`: the tables then hold the same rows, days and columns, and each write reports
    the same commit figures and observed metrics."""
    spark_side, arrow_side = WarehouseResource(root=str(tmp_path / "spark")), WarehouseResource(root=str(tmp_path / "arrow"))
    table = Table("bronze", "events", "one row per event", partition_column="event_date", stats=("kafka_offset",))
    first = spark.createDataFrame([(1, "a", D1), (2, "b", D2), (3, "c", None)], "kafka_offset bigint, userId string, event_date date")
    writes = [
        (first, [D1, D2], "event_date IS NULL"),  # creates the table
        (spark.createDataFrame([(4, "d", "x", D2)], "kafka_offset bigint, userId string, city string, event_date date"), [D2], None),
        (first.where("false"), [D1], "event_date IS NULL"),  # no rows: the day and the undated rows go
    ]
    for df, days, also_where in writes:
        observe = {"offsets": F.sum("kafka_offset")}
        ours = {}
        for side, few in ((spark_side, False), (arrow_side, True)):
            with side.writing_few_rows(few):
                commit = side.replace_days(table, df, days, also_where, observe=dict(observe))
            ours[few] = (commit.version, commit.rows_written, commit.total_rows, commit.day_rows, commit.observed)
            assert rows(side.read(table)) == rows(delta_read(spark, side, table, side.version(table)))
        assert ours[True] == ours[False]
        assert rows(arrow_side.read(table)) == rows(spark_side.read(table))
    assert rows(arrow_side.read(table)) == [(4, "d", D2, "x")]
    assert arrow_side.read(table).schema.simpleString() == spark_side.read(table).schema.simpleString()
    assert arrow_side.delta_rs(table).metadata().configuration == spark_side.delta_rs(table).metadata().configuration
    engines = {side: {c["engineInfo"].split(":")[0].split("/")[0] for c in side.delta_rs(table).history()} for side in (spark_side, arrow_side)}
    assert engines == {spark_side: {"Apache-Spark"}, arrow_side: {"delta-rs"}}


def test_few_rows_merged_by_delta_rs_leave_what_sparks_merge_leaves(spark, tmp_path):
    """The same MERGEs into two tables, one by Delta SQL and one within `writing_few_rows`: insert,
    update only where a named column changed, delete the rows the marker names (never inserting them)."""
    spark_side, arrow_side = WarehouseResource(root=str(tmp_path / "spark")), WarehouseResource(root=str(tmp_path / "arrow"))
    table = Table("silver", "users", "one row per user and level", key=("userId", "level"))
    start = spark.createDataFrame([("1", "free", 1.0), ("2", "paid", 2.0), ("3", "free", None)], "userId string, level string, latitude double")
    marked = spark.createDataFrame(
        [("1", "free", 5.0, False), ("2", "paid", None, True), ("4", None, 1.0, False), ("5", "x", 1.0, True)],
        "userId string, level string, latitude double, _stale boolean",
    )
    unchanged_or_new = spark.createDataFrame([("1", "free", 5.0), ("3", "free", None), ("6", "paid", 6.0)], "userId string, level string, latitude double")
    for side, few in ((spark_side, False), (arrow_side, True)):
        side.overwrite(table, start)
        with side.writing_few_rows(few):
            side.merge(table, marked, table.key, delete_marker="_stale")
            side.merge(table, unchanged_or_new, table.key, update_if_changed=("latitude",))
    expected = [("1", "free", 5.0), ("3", "free", None), ("4", None, 1.0), ("6", "paid", 6.0)]
    assert sorted(rows(spark_side.read(table)), key=str) == sorted(rows(arrow_side.read(table)), key=str) == sorted(expected, key=str)
    merged_by = {c["engineInfo"].split(":")[0].split("/")[0] for c in arrow_side.delta_rs(table).history() if c["operation"] == "MERGE"}
    assert merged_by == {"delta-rs"}


def test_a_run_reads_a_snapshot_once_and_its_own_writes_after_they_commit(spark, tmp_path):
    """Within a run, the same read is the same DataFrame until a write (Spark's or delta-rs's) commits."""
    with build_resources({"warehouse": WarehouseResource(root=str(tmp_path))}) as resources:
        warehouse: WarehouseResource = resources.warehouse
        warehouse.overwrite(ARTISTS, spark.createDataFrame([("k1", "one")], "artistKey string, name string"))
        first = warehouse.read(ARTISTS)
        assert warehouse.read(ARTISTS) is first and rows(first) == [("k1", "one")]
        warehouse.overwrite(ARTISTS, spark.createDataFrame([("k2", "two")], "artistKey string, name string"))  # Spark's writer
        assert rows(warehouse.read(ARTISTS)) == [("k2", "two")]
        with warehouse.writing_few_rows(True):
            warehouse.merge(ARTISTS, spark.createDataFrame([("k3", "three")], "artistKey string, name string"), ["artistKey"])
        assert rows(warehouse.read(ARTISTS)) == [("k2", "two"), ("k3", "three")]
        assert rows(warehouse.read(ARTISTS, version=0)) == [("k1", "one")] and rows(first) == [("k1", "one")]
        warehouse.merge(ARTISTS, spark.createDataFrame([("k4", "four")], "artistKey string, name string"), ["artistKey"])  # Delta SQL
        assert rows(warehouse.read(ARTISTS)) == [("k2", "two"), ("k3", "three"), ("k4", "four")]
