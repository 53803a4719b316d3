"""The warehouse: where every Delta table lives, and the one owner of reading and writing them.

Every write tags its commit with a unique id, so the metadata a step reports comes from the
commit that write made (or says it made none), never from whatever commit happens to be last.
Row counts come from the Delta log's file statistics (delta-rs), not from a scan.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dagster import ConfigurableResource, EnvVar, InitResourceContext, MetadataValue, TableColumn, TableSchema, get_dagster_logger
from delta import exceptions as delta_exceptions
from deltalake import CommitProperties, Transaction, write_deltalake
from deltalake import DeltaTable as RsDeltaTable
from deltalake.exceptions import CommitFailedError
from pydantic import Field, PrivateAttr
from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql import Column, DataFrame, DataFrameWriter, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from medallion_assets.resources.spark import SparkResource, hadoop_aws_package
from medallion_assets.tables import Table

# Commits made by this process are found again in the table's history by this many latest commits.
HISTORY_DEPTH = 50
# SQL commands (MERGE) take the commit's user metadata from the session.
COMMIT_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
SQL_COMMIT_NAMING = threading.Lock()  # held while the session's COMMIT_USER_METADATA names one statement's commit
STATS_COLUMNS = "delta.dataSkippingStatsColumns"
# Delta's optimistic-concurrency conflicts (every exception delta.exceptions declares), and how
# often a write is tried when it meets one.
CONFLICTS = (*(getattr(delta_exceptions, name) for name in delta_exceptions.__all__), CommitFailedError)  # Spark's, delta-rs's
# Over Spark Connect the same conflicts arrive as errors that name their Java class first.
CONFLICT_JAVA_CLASSES = frozenset(f"io.delta.exceptions.{name}" for name in delta_exceptions.__all__)
WRITE_ATTEMPTS = 4
# A data file's path (relative to its table) that Spark's file reader takes as it is: no pattern
# character, nothing the log would store escaped.
PLAIN_PATH = re.compile(r"[\w.=/-]+")
# The Delta log's names of the types whose Spark SQL names differ.
SPARK_TYPE_NAMES = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}


# Each commit's userMetadata: a unique token, and the Dagster run that wrote it (how rollback finds a run's commits).
COMMIT_TOKEN = re.compile(r"^medallion-write-[0-9a-f]{32}(?: run (?P<run_id>\S+))?$")


def written_by(user_metadata: str | None) -> str | None:
    """The run id a commit's userMetadata names (None for a commit made outside a run, or by another writer)."""
    match = COMMIT_TOKEN.match(user_metadata or "")
    return match.group("run_id") if match else None


class MissingUpstreamTableError(RuntimeError):
    """An input table has not been materialized yet."""


def absolute_uri(location: str) -> str:
    """A Hadoop URI unchanged (s3a://, abfss://, ...); a local path made absolute."""
    return location if "://" in location else os.path.abspath(location)


def delta_rs_uri(uri: str) -> str:
    """The URI delta-rs understands for a Hadoop one (s3a:// is s3:// there)."""
    return "s3://" + uri[len("s3a://"):] if uri.startswith("s3a://") else uri


def in_days(column: str, days: Sequence[date]) -> str:
    """SQL predicate `column IN ('d1', ...)` for partition dates."""
    return f"{column} IN ({', '.join(repr(d.isoformat()) for d in days)})"


@dataclass(frozen=True)
class Commit:
    """What one write did to a table: its commit (if it made one) and the rows the table now holds."""

    table: Table
    uri: str
    version: int | None
    operation: str | None
    rows_written: int
    total_rows: int
    day_rows: dict[date, int] = field(default_factory=dict)
    schema: TableSchema | None = None
    spark_app_id: str | None = None
    observed: dict[str, Any] = field(default_factory=dict)  # metrics the writing job computed on the rows it wrote

    def metadata(self) -> dict[str, Any]:
        """Materialization metadata shared by every partition the write covered."""
        return {
            "dagster/row_count": self.total_rows,
            "rows_written": self.rows_written,
            "delta_version": self.version if self.version is not None else MetadataValue.text("no commit"),
            "delta_operation": self.operation or "none",
            "table_uri": MetadataValue.path(self.uri),
            **({"dagster/column_schema": self.schema} if self.schema is not None else {}),
            **({"spark_app_id": self.spark_app_id} if self.spark_app_id else {}),
        }

    def day_metadata(self, day: date) -> dict[str, Any]:
        """Metadata of one day partition: that day's own row count."""
        return {"dagster/partition_row_count": self.day_rows.get(day, 0)}


def is_conflict(error: Exception) -> bool:
    """Whether an error is a Delta optimistic-concurrency conflict, raised in this process or by a Connect server."""
    if isinstance(error, CONFLICTS):
        return True
    java_class = re.match(r"\(([\w.$]+)\)", str(error)) if isinstance(error, SparkConnectGrpcException) else None
    return java_class is not None and java_class.group(1) in CONFLICT_JAVA_CLASSES


def retry_on_conflict(table: Table, write: Callable[[], Any]) -> None:
    """Run a write; when a concurrent writer's commit conflicts with it (two runs creating or merging
    into one table), wait a little and run it again. Every write here is idempotent: it replaces days,
    a whole table or merged keys, or appends under a Delta transaction id."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            write()
            return
        except Exception as conflict:
            if attempt == WRITE_ATTEMPTS or not is_conflict(conflict):
                raise
            wait_s = random.uniform(1, 2**attempt)
            get_dagster_logger().warning(
                f"{table.path}: a concurrent commit conflicted ({type(conflict).__name__}); attempt {attempt + 1} in {wait_s:.1f} s"
            )
            time.sleep(wait_s)


def of_groups(df: DataFrame, group: str, touched: DataFrame) -> DataFrame:
    """The rows of `df` whose `group` value (null included) is one of `touched`'s (broadcast)."""
    groups = F.broadcast(touched.select(F.col(group).alias("_group")).distinct())
    return df.join(groups, df[group].eqNullSafe(groups["_group"]), "left_semi")


def described(table: Table, columns: Iterable[tuple[str, str]]) -> TableSchema:
    """Dagster column schema of (name, type) columns of a table, with the descriptions of the columns it declares."""
    declared = {c.name: c.doc for c in table.columns}
    return TableSchema(columns=[TableColumn(name, dtype, declared.get(name)) for name, dtype in columns])


def column_schema(df: DataFrame, table: Table) -> TableSchema:
    """Dagster column schema of a DataFrame written to a table (Spark SQL type names)."""
    return described(table, ((f.name, f.dataType.simpleString()) for f in df.schema.fields))


def spark_type(delta_type: str | dict) -> str:
    """The Spark SQL name of a type of the Delta log (a nested type stays in its JSON form)."""
    return SPARK_TYPE_NAMES.get(delta_type, delta_type) if isinstance(delta_type, str) else json.dumps(delta_type)


def stored_schema(delta: RsDeltaTable, table: Table) -> TableSchema:
    """Dagster column schema of a table as its Delta log records it (Spark SQL type names)."""
    fields = json.loads(delta.schema().to_json())["fields"]
    return described(table, ((f["name"], spark_type(f["type"])) for f in fields))


def spark_app_id(session: SparkSession) -> str | None:
    """The Spark application id, read from the runtime conf (works over Spark Connect too)."""
    return session.conf.get("spark.app.id", None)


def readable_paths(delta: RsDeltaTable, day_column: str | None, days: Sequence[date] | None) -> list[str] | None:
    """The snapshot's data files (only the days' when given), relative to the table; None when only Spark's
    Delta reader reads the table right (a reader protocol above 1, or a path Spark's file reader would take
    for a pattern or the log stores escaped)."""
    if delta.protocol().min_reader_version > 1:
        return None
    files = pa.table(delta.get_add_actions(flatten=True))
    paths = files["path"].to_pylist()
    if days is not None and day_column is not None and files.num_rows:
        wanted = set(days)
        paths = [p for p, day in zip(paths, files[f"partition.{day_column}"].to_pylist()) if day in wanted]
    return paths if all(PLAIN_PATH.fullmatch(p) for p in paths) else None


def named(token: str, transactions: Mapping[str, int] | None = None) -> CommitProperties:
    """A delta-rs commit's properties: the token as its userMetadata (COMMIT_TOKEN), and the Delta
    transactions (app id -> version) it records."""
    return CommitProperties(custom_metadata={"userMetadata": token}, app_transactions=[Transaction(app, v) for app, v in (transactions or {}).items()])


def arrow_rows(df: DataFrame) -> pa.Table:
    """The DataFrame's rows collected to Arrow (one Spark job), every column nullable, as Spark's Delta
    writer stores them."""
    rows = df.toArrow()
    return rows.cast(pa.schema([f.with_nullable(True) for f in rows.schema]))


def read_files(session: SparkSession, root: str, delta: RsDeltaTable, paths: Sequence[str]) -> DataFrame:
    """A Delta table's data files (`readable_paths`) read with the schema its log records, in its column
    order; partition values come from the files' paths.

    Spark's file reader puts the partition columns last; only a table whose log orders them otherwise
    is reordered (a projection analysed again costs 15-25 ms of driver time per read)."""
    schema = StructType.fromJson(json.loads(delta.schema().to_json()))
    if not paths:
        return session.createDataFrame([], schema)
    root = root.rstrip("/")
    df = session.read.schema(schema).option("basePath", root).parquet(*(f"{root}/{p}" for p in paths))
    names, partitions = schema.fieldNames(), delta.metadata().partition_columns
    if [n for n in names if n not in partitions] + [n for n in names if n in partitions] == names:
        return df
    return df.select(*(F.col(f"`{name}`") for name in names))


class WarehouseResource(ConfigurableResource):
    """Delta root and reference CSVs (any Hadoop URI for the root), and every Delta read and write."""

    root: str | None = Field(default=None, description="Delta root; env MEDALLION_WAREHOUSE, default data/warehouse.")
    songs_csv: str | None = Field(default=None, description="songs.csv; env MEDALLION_SONGS_CSV, default data/songs.csv.")
    state_codes_csv: str | None = Field(
        default=None, description="state_codes.csv; env MEDALLION_STATE_CODES_CSV, default data/state_codes.csv."
    )
    spark: SparkResource | None = Field(default=None, description="The run's Spark; default: the process's session.")
    s3_endpoint: str | None = Field(
        default=None, description="S3 endpoint URL of an s3a:// root (an S3-compatible store); env MEDALLION_S3_ENDPOINT, default AWS."
    )
    s3_region: str = Field(default="us-east-1", description="S3 region of an s3a:// root.")
    s3_path_style: bool = Field(default=True, description="Path-style S3 requests (bucket in the path), as S3-compatible stores need.")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key; env AWS_ACCESS_KEY_ID.")
    s3_secret_access_key: str | None = Field(
        default=None, description="S3 secret key; env AWS_SECRET_ACCESS_KEY. Passed to Spark and delta-rs only, never logged."
    )

    @property
    def root_uri(self) -> str:
        """Absolute warehouse root."""
        return absolute_uri(self.root or EnvVar("MEDALLION_WAREHOUSE").get_value(default="data/warehouse") or "")

    def uri(self, table: Table) -> str:
        """Location of one table: <root>/<layer>/<name>."""
        return f"{self.root_uri.rstrip('/')}/{table.path}"

    def sql_name(self, table: Table) -> str:
        """The table's name in Delta SQL (delta.`<location>`)."""
        return f"delta.`{self.uri(table)}`"

    @property
    def songs_uri(self) -> str:
        """Location of songs.csv."""
        return absolute_uri(self.songs_csv or EnvVar("MEDALLION_SONGS_CSV").get_value(default="data/songs.csv") or "")

    @property
    def state_codes_uri(self) -> str:
        """Location of state_codes.csv."""
        configured = self.state_codes_csv or EnvVar("MEDALLION_STATE_CODES_CSV").get_value(default="data/state_codes.csv")
        return absolute_uri(configured or "")

    @property
    def on_s3(self) -> bool:
        """Whether the warehouse root is an s3a:// URI."""
        return self.root_uri.startswith("s3a://")

    def _s3(self) -> tuple[str | None, str | None, str | None]:
        """Endpoint, access key and secret in effect (settings, else the environment)."""
        return (
            self.s3_endpoint or EnvVar("MEDALLION_S3_ENDPOINT").get_value(),
            self.s3_access_key_id or EnvVar("AWS_ACCESS_KEY_ID").get_value(),
            self.s3_secret_access_key or EnvVar("AWS_SECRET_ACCESS_KEY").get_value(),
        )

    def spark_settings(self) -> dict[str, str]:
        """The Hadoop s3a settings an s3a:// root needs in Spark; none for other roots."""
        if not self.on_s3:
            return {}
        endpoint, key, secret = self._s3()
        conf = {"fs.s3a.path.style.access": str(self.s3_path_style).lower(), "fs.s3a.endpoint.region": self.s3_region}
        if endpoint:
            conf["fs.s3a.endpoint"] = endpoint
            conf["fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https://")).lower()
        if key and secret:
            conf["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
            conf["fs.s3a.access.key"], conf["fs.s3a.secret.key"] = key, secret
        return {f"spark.hadoop.{k}": v for k, v in conf.items()}

    def storage_options(self) -> dict[str, str]:
        """delta-rs storage options of the root (endpoint, region, credentials); none for a local root."""
        if not self.on_s3:
            return {}
        endpoint, key, secret = self._s3()
        options = {"AWS_REGION": self.s3_region, "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": str(not self.s3_path_style).lower()}
        if endpoint:
            options["AWS_ENDPOINT_URL"] = endpoint
            options["AWS_ALLOW_HTTP"] = str(endpoint.startswith("http://")).lower()
        if key and secret:
            options["AWS_ACCESS_KEY_ID"], options["AWS_SECRET_ACCESS_KEY"] = key, secret
        return options

    @property
    def spark_resource(self) -> SparkResource:
        """The run's Spark settings (the process's defaults when none were given)."""
        return self.spark or SparkResource()

    @property
    def session(self) -> SparkSession:
        """The run's Spark session (started on first use, with the s3a file system for an s3a:// root)."""
        packages = [hadoop_aws_package()] if self.on_s3 else []
        return self.spark_resource.session_with(self.spark_settings(), packages)

    _run_id: str | None = PrivateAttr(default=None)
    _few_rows: bool = PrivateAttr(default=False)  # see writing_few_rows
    _snapshots: dict[str, RsDeltaTable] | None = PrivateAttr(default=None)  # the run's, by table path: see delta_rs
    _frames: dict[tuple, DataFrame] | None = PrivateAttr(default=None)  # the run's reads, by (table path, version, days): see read
    _run_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)  # guards _snapshots and _frames across threads

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Every run checks the root first, so a bad location fails before any table is touched; its
        commits then name the run, and its reads share one snapshot per table."""
        self.ensure_writable()
        self._run_id = context.run.run_id if context.run else None
        self._snapshots, self._frames = {}, {}

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """The run's snapshots and reads are let go."""
        self._snapshots, self._frames = None, None

    def ensure_writable(self) -> None:
        """Fail fast, naming the path, when a local warehouse root cannot be written."""
        root = self.root_uri
        if "://" in root:
            return
        path = Path(root)
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(f"Delta warehouse {root} is not writable (checked {existing}).")

    # -- reads ---------------------------------------------------------------------------------

    def delta_rs(self, table: Table, version: int | None = None) -> RsDeltaTable | None:
        """The table (at `version`, default the latest) opened with delta-rs (no JVM), or None when it does not exist yet.

        Within a run, the table is opened once and that snapshot is shared by every step and thread that
        reads it, instead of each read replaying the Delta log again (118 opens in the downstream run of a
        10,000-event batch). The run's own writes move it forward: delta-rs commits through it, and after
        a commit by Spark, or a write that met another writer's commit, it is opened again. A run thus reads
        a table as of its first look or its own last write, not as of a commit another run made since.
        Threads of one step write different tables (`side_by_side`), so no read meets a write of its own
        table half-way through the shared snapshot.
        """
        if self._snapshots is None:  # outside a run: always the latest
            return self._open(table, version)
        with self._run_lock:
            latest = self._snapshots.get(table.path)
        if latest is None:
            latest = self._open(table)
            if latest is None:
                return None
            with self._run_lock:
                latest = self._snapshots.setdefault(table.path, latest)
        return latest if version is None or version == latest.version() else self._open(table, version)

    def _open(self, table: Table, version: int | None = None) -> RsDeltaTable | None:
        """The table read from its Delta log (at `version`, default the latest), or None when it does not exist yet."""
        uri, options = delta_rs_uri(self.uri(table)), self.storage_options()
        return RsDeltaTable(uri, version=version, storage_options=options) if RsDeltaTable.is_deltatable(uri, options) else None

    def _forget(self, table: Table) -> None:
        """Open the table again on its next read in this run: something other than its snapshot committed to it."""
        with self._run_lock:
            if self._snapshots is not None:
                self._snapshots.pop(table.path, None)

    def _retrying(self, table: Table, write: Callable[[], Any], with_spark: bool = False) -> None:
        """`retry_on_conflict`, each attempt after a failed one (a conflict) on the table opened again; after a
        write `with_spark`, whose commit the run's snapshot does not hold, the table is opened again on next use."""

        def attempt() -> None:
            try:
                write()
            except Exception:
                self._forget(table)
                raise

        try:
            retry_on_conflict(table, attempt)
        finally:
            if with_spark:
                self._forget(table)

    def version(self, table: Table) -> int:
        """The table's latest version, to read it more than once as one snapshot."""
        delta = self.delta_rs(table)
        if delta is None:
            raise MissingUpstreamTableError(self._missing(table))
        return delta.version()

    def exists(self, table: Table) -> bool:
        """Whether the table has been written."""
        with self._run_lock:
            if self._snapshots is not None and table.path in self._snapshots:
                return True
        return RsDeltaTable.is_deltatable(delta_rs_uri(self.uri(table)), self.storage_options())

    def _missing(self, table: Table) -> str:
        """What a read of a table not written yet says."""
        return f"Delta table {table.path} does not exist at {self.uri(table)}: materialize {table.path} first."

    def read(self, table: Table, days: Sequence[date] | None = None, version: int | None = None) -> DataFrame:
        """The table (only the given days of a daily table; at `version`, default the latest); a clear
        error naming it when it does not exist.

        delta-rs resolves the snapshot from the Delta log and Spark's Parquet reader reads its files: Spark's
        own Delta reader first computes the snapshot and filters its files with Spark jobs of their own, which
        on a 10,000-event batch were 67 of the 154 jobs downstream of raw and about 30% of its seconds. A table
        whose protocol asks more of a reader than version 1 (deletion vectors, column mapping, ...) is read
        by Spark's Delta reader, which knows those features.

        Within a run, a read of the same snapshot and days is the same DataFrame: building one (the file
        index, the columns in the log's order) costs 35-100 ms of driver time, and a batch's steps read
        the dimensions and `wide_fact` more than once.
        """
        delta = self.delta_rs(table, version)
        if delta is None:
            raise MissingUpstreamTableError(self._missing(table))
        key = (table.path, delta.version(), None if days is None else tuple(days))
        with self._run_lock:
            df = self._frames.get(key) if self._frames is not None else None
        if df is not None:
            return df
        column = self._day_column(table) if days is not None else None
        paths = readable_paths(delta, table.partition_column, days)
        if paths is None:
            df = self.session.read.format("delta").option("versionAsOf", delta.version()).load(self.uri(table))
            if column is not None:
                df = df.where(F.col(column).isin(list(days)))
        else:  # the days' files hold only the days' rows
            df = read_files(self.session, self.uri(table), delta, paths)
        with self._run_lock:
            if self._frames is not None:
                df = self._frames.setdefault(key, df)
        return df

    def day_rows(self, table: Table, days: Sequence[date] | None = None, version: int | None = None) -> dict[date, int]:
        """Rows per day partition (all days, or the given ones; at `version`, default the latest), from the
        Delta log's file statistics."""
        return self._day_counts(table, self._files(self.delta_rs(table, version), table), days)

    def rows_on_days(self, tables: Iterable[Table], days: Sequence[date] | None) -> int | None:
        """Rows the daily tables hold on the days, together, from their Delta logs (a table not written yet
        holds none); None without days (a run over every day)."""
        if days is None:
            return None
        return sum(sum(self.day_rows(table, days).values()) for table in tables)

    def partition_days(self, table: Table, version: int | None = None) -> set[date | None]:
        """The day partitions holding live files (None: the one of rows without a day), from the Delta log."""
        files = self._files(self.delta_rs(table, version), table)
        return set(files[f"partition.{self._day_column(table)}"].to_pylist()) if files is not None else set()

    def days_from(self, table: Table, first: date) -> list[date]:
        """The day partitions holding live files from `first` on, in order, from the Delta log."""
        return sorted(day for day in self.partition_days(table) if day is not None and day >= first)

    def group_rows(self, table: Table, days: Sequence[date], by: Sequence[str]) -> dict[tuple, int]:
        """Rows per group of the `by` columns on the given days, read with delta-rs (no Spark job): for a
        table whose days are small, such as quarantine."""
        delta = self.delta_rs(table)
        if delta is None or not days:
            return {}
        column = self._day_column(table)
        rows = delta.to_pyarrow_table(filters=[(column, "in", list(days))], columns=list(by))
        grouped = rows.group_by(list(by)).aggregate([([], "count_all")])
        return {tuple(r[c] for c in by): r["count_all"] for r in grouped.to_pylist()}

    def column_total(self, table: Table, column: str) -> int:
        """The sum of a numeric column over the whole table, read with delta-rs (no Spark job): for a small table."""
        delta = self.delta_rs(table)
        if delta is None:
            raise MissingUpstreamTableError(self._missing(table))
        return int(pc.sum(delta.to_pyarrow_table(columns=[column])[column]).as_py() or 0)

    def total_rows(self, table: Table) -> int:
        """Rows in the table, from the Delta log's file statistics."""
        return self._total(self._files(self.delta_rs(table), table))

    def added_files(self, commit: Commit) -> pa.Table | None:
        """The files a commit added, with partition values and statistics (one row each, delta-rs
        columns: `num_records`, `partition.<column>`, `null_count.<column>`); None when it made no commit."""
        if commit.version is None:
            return None
        uri, options = delta_rs_uri(commit.uri), self.storage_options()
        files = self._files(RsDeltaTable(uri, version=commit.version, storage_options=options), commit.table)
        if commit.version > 0 and files is not None:
            before = self._files(RsDeltaTable(uri, version=commit.version - 1, storage_options=options), commit.table)
            if before is not None:
                files = files.filter(pc.invert(pc.is_in(files["path"], value_set=before["path"])))
        return files

    def days_changed(self, table: Table, before: int | None, after: int) -> set[date]:
        """The days whose files differ between two versions of a daily table (`before` None: no table yet)."""
        column = f"partition.{self._day_column(table)}"
        old = self._files(self.delta_rs(table, before), table) if before is not None else None
        new = self._files(self.delta_rs(table, after), table)
        paths = [set(f["path"].to_pylist()) if f is not None else set() for f in (old, new)]
        changed = paths[0] ^ paths[1]
        return {
            day
            for files in (old, new)
            if files is not None
            for path, day in zip(files["path"].to_pylist(), files[column].to_pylist())
            if path in changed and day is not None
        }

    def kafka_partitions(self, table: Table) -> set[int]:
        """The Kafka partitions a raw table holds records of, from its files' statistics."""
        files = self._files(self.delta_rs(table), table)
        if files is None or files.num_rows == 0 or "min.kafka_partition" not in files.column_names:
            return set()
        low, high = files["min.kafka_partition"].to_pylist(), files["max.kafka_partition"].to_pylist()
        return {p for lo, hi in zip(low, high) if lo is not None and hi is not None for p in range(lo, hi + 1)}

    def _day_counts(self, table: Table, files: pa.Table | None, days: Sequence[date] | None) -> dict[date, int]:
        """Rows per day partition of the live files."""
        column = f"partition.{self._day_column(table)}"
        counts: dict[date, int] = dict.fromkeys(days or (), 0)
        if files is None or files.num_rows == 0:
            return counts
        grouped = files.group_by(column).aggregate([("num_records", "sum")])
        for day, rows in zip(grouped[column].to_pylist(), grouped["num_records_sum"].to_pylist()):
            if day is not None and (days is None or day in counts):
                counts[day] = int(rows or 0)
        return counts

    @staticmethod
    def _total(files: pa.Table | None) -> int:
        """Rows of the live files."""
        return int(pc.sum(files["num_records"]).as_py() or 0) if files is not None and files.num_rows else 0

    @staticmethod
    def _files(delta: RsDeltaTable | None, table: Table) -> pa.Table | None:
        """The live files of the table with their row counts; None when the table does not exist."""
        if delta is None:
            return None
        files = pa.table(delta.get_add_actions(flatten=True))
        if files.num_rows and files["num_records"].null_count:
            raise RuntimeError(f"{table.path} has files without row-count statistics; run OPTIMIZE to rewrite them.")
        return files

    @staticmethod
    def _day_column(table: Table) -> str:
        if table.partition_column is None:
            raise ValueError(f"{table.path} has no day partitions")
        return table.partition_column

    # -- writes --------------------------------------------------------------------------------

    @staticmethod
    def _writer(table: Table, df: DataFrame) -> DataFrameWriter:
        """A Delta writer of `df`; a write that creates the table limits its file statistics to the table's
        stats columns (a table property, kept by every later write). A column tables.py added since the
        table was created is added to it (its older rows hold null); column_schema_matches checks the rest."""
        writer = df.write.format("delta").option("mergeSchema", "true")
        if table.stats_columns:
            writer = writer.option(STATS_COLUMNS, ",".join(table.stats_columns))
        return writer

    def replace_days(
        self,
        table: Table,
        df: DataFrame,
        days: Sequence[date],
        also_where: str | None = None,
        observe: Mapping[str, Column] | None = None,
    ) -> Commit:
        """Overwrite exactly the given days (and the rows `also_where` selects), leaving the others untouched.

        Within `writing_few_rows`, Spark computes the rows into Arrow and delta-rs commits them (one Spark
        job, no Delta snapshot in Spark); otherwise Spark's Delta writer writes them.
        `observe` names aggregates over the written rows that the writing job computes as it writes (a
        Spark Observation: no job of their own, no read of what was written); the commit carries them.
        """
        column = self._day_column(table)
        predicate = in_days(column, days) + (f" OR {also_where}" if also_where else "")
        token = self._token()
        observation = Observation(f"medallion_{uuid.uuid4().hex}") if observe else None
        if observation is not None:
            df = df.observe(observation, *[metric.alias(name) for name, metric in (observe or {}).items()])
        if self._few_rows:
            self._replace_with_delta_rs(table, df, predicate, token)
        else:
            writer = (
                self._writer(table, df.repartition(column))  # one file per day and write, not one per shuffle partition
                .mode("overwrite")
                .partitionBy(column)
                .option("replaceWhere", predicate)
                .option("userMetadata", token)
            )
            self._retrying(table, lambda: writer.save(self.uri(table)), with_spark=True)
        commit = self._commit(table, token, df, days)
        return replace(commit, observed=dict(observation.get)) if observation is not None else commit

    @property
    def few_rows(self) -> bool:
        """Whether the step at hand is one of few rows (within `writing_few_rows(True)`)."""
        return self._few_rows

    @contextlib.contextmanager
    def writing_few_rows(self, few: bool) -> Iterator[bool]:
        """Within the block, when `few` (the caller knows its writes are small), `replace_days` and `merge`
        commit with delta-rs. Spark's Delta writer pays for its own snapshot, the replaceWhere file filter and the
        commit in jobs and driver time whatever the rows; collected to Arrow, the same rows cost one job.
        The downstream run of a 10,000-event batch on 30 days of history took 13.3-14.5 s in three
        batches of four (27.3 s in the fourth) against 18.4-22.1 s (two warehouses in one session, batches
        alternating), 74 Spark jobs against 92.
        Yields `few`."""
        self._few_rows = few
        try:
            yield few
        finally:
            self._few_rows = False

    def _replace_with_delta_rs(self, table: Table, df: DataFrame, predicate: str, token: str) -> None:
        """Commit `df`'s rows in place of those `predicate` selects, with delta-rs; a column tables.py added
        since the table was created is added (older rows hold null)."""
        rows = arrow_rows(df)

        def write() -> None:
            delta = self.delta_rs(table)
            write_deltalake(
                delta if delta is not None else delta_rs_uri(self.uri(table)),
                rows,
                partition_by=[self._day_column(table)],
                mode="overwrite" if delta is not None else "append",  # a table not written yet: its days are empty
                predicate=predicate if delta is not None else None,
                schema_mode="merge",
                storage_options=self.storage_options() or None,
                configuration=self._created_with(table, delta),
                commit_properties=named(token),
            )

        self._retrying(table, write)

    @staticmethod
    def _created_with(table: Table, delta: RsDeltaTable | None) -> dict[str, str | None] | None:
        """The properties a delta-rs write that creates the table gives it: file statistics limited to the
        table's stats columns, as Spark's writes do (None when the table exists, or has no such limit)."""
        return None if delta is not None or not table.stats_columns else {STATS_COLUMNS: ",".join(table.stats_columns)}

    def overwrite(self, table: Table, df: DataFrame) -> Commit:
        """Replace the whole table in one atomic commit."""
        token = self._token()
        writer = self._writer(table, df).mode("overwrite").option("overwriteSchema", "true").option("userMetadata", token)
        self._retrying(table, lambda: writer.save(self.uri(table)), with_spark=True)
        return self._commit(table, token, df)

    def append_once(self, table: Table, data: pa.RecordBatchReader, transactions: Mapping[str, int]) -> Commit:
        """Append Arrow data by day in one commit with delta-rs (no JVM) that records the transactions
        (app id -> version), once: a table already holding every one of them, or later versions, is left as it is."""
        delta = self.delta_rs(table)
        if delta is not None and all((delta.transaction_version(app) or -1) >= v for app, v in transactions.items()):
            return self.unchanged(table)
        token = self._token()
        write_deltalake(
            delta if delta is not None else delta_rs_uri(self.uri(table)),
            data,
            partition_by=[self._day_column(table)],
            mode="append",
            schema_mode="merge",  # a column tables.py added since the table was created (older rows hold null)
            storage_options=self.storage_options() or None,
            configuration=self._created_with(table, delta),
            commit_properties=named(token, transactions),
        )
        return self._commit(table, token, None)

    def append(self, table: Table, rows: pa.Table) -> None:
        """Append Arrow rows with delta-rs (no JVM), creating the table on the first append; a commit that
        meets another writer's (two steps creating the table at once) is tried again on the new version."""

        def write() -> None:
            delta = self.delta_rs(table)
            write_deltalake(
                delta if delta is not None else delta_rs_uri(self.uri(table)),
                rows,
                mode="append",
                storage_options=self.storage_options() or None,
                commit_properties=named(self._token()),
            )

        self._retrying(table, write)

    @contextlib.contextmanager
    def _sql_commits_named(self, token: str) -> Iterator[SparkSession]:
        """The session, whose Delta SQL commands commit with `token` as their userMetadata until the block ends.

        The setting is the session's, not the statement's: two steps' MERGEs on threads of one run would
        otherwise name each other's commits (or none), so such statements run one at a time.
        """
        session = self.session
        with SQL_COMMIT_NAMING:
            session.conf.set(COMMIT_USER_METADATA, token)
            try:
                yield session
            finally:
                session.conf.unset(COMMIT_USER_METADATA)

    def restore(self, table: Table, version: int | None) -> None:
        """RESTORE the table to a version (Delta SQL, so over Spark Connect too); None empties it (the version
        before the one that created it)."""
        name = self.sql_name(table)
        try:
            with self._sql_commits_named(self._token()) as session:
                session.sql(f"RESTORE TABLE {name} TO VERSION AS OF {version}" if version is not None else f"DELETE FROM {name}").collect()
        finally:
            self._forget(table)

    def commit_transactions(self, table: Table, transactions: Mapping[str, int]) -> None:
        """Record transactions (app id -> version) in a commit of no rows (delta-rs): a lower version than
        the table holds replaces it, as rollback of raw's Kafka offsets needs."""
        delta = self.delta_rs(table)
        if delta is None:
            raise MissingUpstreamTableError(self._missing(table))
        write_deltalake(
            delta,
            pa.schema(delta.schema().to_arrow()).empty_table(),
            mode="append",
            storage_options=self.storage_options() or None,
            commit_properties=named(self._token(), transactions),
        )

    def append_once_with_spark(self, table: Table, df: DataFrame, app_id: str, version: int) -> Commit:
        """Append a DataFrame by day with Spark's Delta writer in one commit that records the transaction
        (app id -> version), once: Delta skips the write when the table already holds that version or a
        later one (then no commit is reported)."""
        token = self._token()
        writer = (
            self._writer(table, df)
            .mode("append")
            .partitionBy(self._day_column(table))
            .option("txnAppId", app_id)
            .option("txnVersion", version)
            .option("userMetadata", token)
        )
        self._retrying(table, lambda: writer.save(self.uri(table)), with_spark=True)
        return self._commit(table, token, df)

    def merge(
        self, table: Table, source: DataFrame, on: Sequence[str], update_if_changed: Sequence[str] = (), delete_marker: str | None = None
    ) -> Commit:
        """Upsert `source` by the key columns `on` (null-safe): insert new keys, update matched rows (only
        those where one of the `update_if_changed` columns differs, when named), and delete the matched
        rows whose boolean column `delete_marker` is true (those are never inserted).

        Delta SQL's MERGE (so over Spark Connect too); within `writing_few_rows`, the source's rows
        collected to Arrow and merged by delta-rs, which on a 10,000-event batch took the downstream run
        from 12.8-15.7 s to 11.3-11.6 s and 74 Spark jobs to 59 (two warehouses in one session, alternating).
        """
        token = self._token()
        if self._few_rows:
            self._merge_with_delta_rs(table, source, on, update_if_changed, delete_marker, token)
        else:
            self._merge_with_spark(table, source, on, update_if_changed, delete_marker, token)
        return self._commit(table, token, source.drop(delete_marker) if delete_marker else source)

    def _merge_with_spark(
        self, table: Table, source: DataFrame, on: Sequence[str], update_if_changed: Sequence[str], delete_marker: str | None, token: str
    ) -> None:
        """`merge` as one Delta SQL statement."""
        view = f"medallion_merge_{uuid.uuid4().hex}"
        matches = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in on)
        unchanged = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in update_if_changed)
        updated = f"WHEN MATCHED AND NOT ({unchanged}) THEN UPDATE SET *" if unchanged else "WHEN MATCHED THEN UPDATE SET *"
        if delete_marker:
            clauses = (f"WHEN MATCHED AND s.`{delete_marker}` THEN DELETE", updated, f"WHEN NOT MATCHED AND NOT s.`{delete_marker}` THEN INSERT *")
        else:
            clauses = (updated, "WHEN NOT MATCHED THEN INSERT *")
        source.createOrReplaceTempView(view)
        statement = f"MERGE INTO {self.sql_name(table)} AS t USING {view} AS s ON {matches} {' '.join(clauses)}"

        def attempt() -> None:
            with self._sql_commits_named(token) as session:
                session.sql(statement)

        try:
            self._retrying(table, attempt, with_spark=True)
        finally:
            self.session.catalog.dropTempView(view)

    def _merge_with_delta_rs(
        self, table: Table, source: DataFrame, on: Sequence[str], update_if_changed: Sequence[str], delete_marker: str | None, token: str
    ) -> None:
        """`merge` of the source's rows, collected to Arrow, by delta-rs (its SQL: "quoted" names, IS NOT DISTINCT FROM)."""
        rows = arrow_rows(source)

        def same(columns: Sequence[str]) -> str:
            return " AND ".join(f'(t."{c}" IS NOT DISTINCT FROM s."{c}")' for c in columns)

        skipped = [delete_marker] if delete_marker else None

        def attempt() -> None:
            delta = self.delta_rs(table)
            if delta is None:
                raise MissingUpstreamTableError(self._missing(table))
            merger = delta.merge(
                rows, same(on), source_alias="s", target_alias="t", commit_properties=named(token)
            )
            if delete_marker:
                merger = merger.when_matched_delete(f's."{delete_marker}"')
            merger = merger.when_matched_update_all(f"NOT ({same(update_if_changed)})" if update_if_changed else None, except_cols=skipped)
            merger.when_not_matched_insert_all(f'NOT s."{delete_marker}"' if delete_marker else None, except_cols=skipped).execute()

        self._retrying(table, attempt)

    def stale_rows(self, table: Table, rows: DataFrame, group: str, touched: DataFrame) -> DataFrame:
        """The table's rows of the `touched` groups whose key `rows` no longer holds."""
        current = self.read(table)
        in_touched = of_groups(current, group, touched)
        keys = rows.select(*[F.col(k).alias(f"_key_{k}") for k in table.key])
        return in_touched.join(keys, [in_touched[k].eqNullSafe(keys[f"_key_{k}"]) for k in table.key], "left_anti")

    def replace_groups(self, table: Table, rows: DataFrame, group: str, touched: DataFrame) -> Commit:
        """Make the table's rows of the `touched` groups (one column, `group`) exactly `rows`, in one MERGE
        by the table's key: their `stale_rows` are deleted."""
        rows = rows.cache()  # the stale rows' anti-join and the MERGE's source both read it: computed once
        try:
            stale = self.stale_rows(table, rows, group, touched)
            source = rows.select(*stale.columns).withColumn("_stale", F.lit(False)).unionByName(stale.withColumn("_stale", F.lit(True)))
            return self.merge(table, source, table.key, delete_marker="_stale")
        finally:
            rows.unpersist()

    def unchanged(self, table: Table, days: Sequence[date] = ()) -> Commit:
        """What a step that wrote nothing reports: no commit, and the rows the table holds."""
        return self._commit(table, None, None, days)

    def _token(self) -> str:
        """A commit's userMetadata: unique, naming the run (COMMIT_TOKEN)."""
        return f"medallion-write-{uuid.uuid4().hex}" + (f" run {self._run_id}" if self._run_id else "")

    def _commit(self, table: Table, token: str | None, df: DataFrame | None, days: Sequence[date] = ()) -> Commit:
        """The commit this write made (found by its token; none without one), and the table's rows after it.

        One read of the Delta log answers all of it. The schema is the written DataFrame's, or, when
        nothing was written, the table's as the log records it.
        """
        delta = self.delta_rs(table)
        files = self._files(delta, table)
        entry = None
        if delta is not None and token is not None:
            entry = next((c for c in delta.history(HISTORY_DEPTH) if c.get("userMetadata") == token), None)
        metrics = (entry or {}).get("operationMetrics") or {}
        rows = metrics.get("numOutputRows") or metrics.get("num_added_rows") or metrics.get("num_output_rows") or 0  # Spark, delta-rs
        return Commit(
            table=table,
            uri=self.uri(table),
            version=int(entry["version"]) if entry else None,
            operation=entry.get("operation") if entry else None,
            rows_written=int(rows) if entry else 0,
            total_rows=self._total(files),
            day_rows=self._day_counts(table, files, days) if days else {},
            schema=column_schema(df, table) if df is not None else stored_schema(delta, table) if delta is not None else None,
            spark_app_id=spark_app_id(df.sparkSession) if df is not None else None,  # the writer's, in any thread
        )
