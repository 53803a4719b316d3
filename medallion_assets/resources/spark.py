"""Spark session resource: one lazily started session per process, with Delta and Kafka source."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import pyspark
from dagster import ConfigurableResource, EnvVar
from pydantic import Field, PrivateAttr
from pyspark import SparkContext, inheritable_thread_target
from pyspark.sql import SparkSession

from medallion_assets.paths import REPO_ROOT, file_lock

# The JVM packages every Spark here needs (a local session, a Connect server): Delta and the Kafka source.
SPARK_PACKAGES = (
    f"io.delta:delta-spark_2.13:{version('delta-spark')}",
    f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}",
)
# Packages too large to fetch into every clone (hadoop-aws pulls a 686 MB AWS SDK bundle) are
# resolved into the user's cache instead, once per machine.
USER_IVY_DIR = Path.home() / ".cache" / "medallion_assets" / "ivy"


def hadoop_aws_package() -> str:
    """hadoop-aws of the Hadoop version pyspark ships (the s3a:// file system)."""
    [client] = (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")
    return f"org.apache.hadoop:hadoop-aws:{client.stem.removeprefix('hadoop-client-api-')}"


# Ivy resolves the packages from Maven Central only; the JVM logs without the warnings every run expects.
CONF_DIR = Path(__file__).with_name("conf")
IVY_SETTINGS = CONF_DIR / "ivysettings.xml"
LOG4J2_CONF = CONF_DIR / "log4j2.properties"

BASE_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    # microsecond timestamps, not Spark's default INT96: delta-rs, Polars and DuckDB read them
    # (INT96 9999-12-31, dim_users' open end, overflows nanoseconds there)
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Adaptive execution runs each shuffle stage as a Spark job of its own: on a 10,000-event batch it
    # launched 306 jobs downstream of raw instead of 176, 41 s instead of 31 s; on 1M events, warm, its
    # re-planning gained about 3% (60.6 s against 62.2-62.9 s), so a batch's toll decides.
    "spark.sql.adaptive.enabled": "false",
    # Spark lists more than 32 paths of one read with a Spark job of its own (33 tasks for a 30-day table
    # read whole by a batch's artist_popularity); reads name their files from the Delta log, and the
    # driver looks up a few hundred of them sooner than a job starts.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "512",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.databricks.delta.stats.collect.using.tableSchema": "false",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    # PySpark otherwise records the Python call site of every Column function for error messages,
    # five round trips to the JVM each: a third of a small step was spent building its columns.
    # Static: a Spark Connect server takes it from this conf when it starts, not from its clients.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    # The parallel collector: a run is a batch job that wants throughput, not short pauses (the JVM's
    # default, G1). On the 1M-event benchmark every layer was faster with it, the whole pipeline by 9%.
    "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -XX:+UseParallelGC -Dlog4j2.configurationFile={LOG4J2_CONF.as_uri()}",
}


# Over Spark Connect a client sets only session settings; the server was started with the rest.
SESSION_SETTINGS = ("spark.sql.", "spark.databricks.delta.")
SERVER_SETTINGS = frozenset({"spark.sql.extensions", "spark.sql.catalog.spark_catalog"})


def digest(*parts: object) -> str:
    """A short stable name for some settings."""
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def java_binary() -> str:
    """The java a Spark launcher starts: JAVA_HOME's, else the one on PATH (links resolved)."""
    java_home = os.environ.get("JAVA_HOME")
    found = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    return os.path.realpath(found) if found else "java"


@dataclass(frozen=True)
class StartupCache:
    """What a local JVM start can skip once `python -m medallion_assets.dev.spark_warmup` has filled this
    folder: resolving its packages again (the jars they resolved to are listed) and loading Spark's
    classes one by one from jars (a class-data-sharing archive maps them). Without it a start is only slower."""

    folder: Path
    packages: str  # spark.jars.packages
    ivy_settings: str

    @classmethod
    def of(cls, conf: Mapping[str, str]) -> StartupCache:
        """The cache of a conf's Ivy folder and packages."""
        return cls(Path(conf["spark.jars.ivy"]) / "startup", conf["spark.jars.packages"], conf["spark.jars.ivySettings"])

    @property
    def jars_file(self) -> Path:
        """The jars the packages resolved to, comma-separated."""
        return self.folder / f"jars-{digest(self.packages, self.ivy_settings, pyspark.__version__)}.txt"

    @property
    def archive(self) -> Path:
        """The classes a run loads, archived by this pyspark's Spark under this java."""
        return self.folder / f"classes-{digest(pyspark.__version__, java_binary())}.jsa"

    def resolved_jars(self) -> str | None:
        """The recorded jars, when every one of them is still in the Ivy cache."""
        try:
            jars = self.jars_file.read_text().strip()
        except OSError:
            return None
        present = jars and all(Path(jar.removeprefix("file://")).is_file() for jar in jars.split(","))
        return jars if present else None

    def record_jars(self, session: SparkSession) -> None:
        """Keep the jars a session started with these packages resolved to."""
        jars = session.sparkContext.getConf().get("spark.jars")
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.jars_file.with_name(f"{self.jars_file.name}.{os.getpid()}")
        partial.write_text(jars)
        partial.replace(self.jars_file)

    def applied(self, conf: Mapping[str, str]) -> dict[str, str]:
        """The conf with the recorded jars instead of the packages, and the archive, when they exist."""
        conf = dict(conf)
        jars = self.resolved_jars()
        if jars:
            conf["spark.jars"] = ",".join(filter(None, (conf.get("spark.jars"), jars)))
            del conf["spark.jars.packages"]
        if self.archive.is_file():
            options = conf.get("spark.driver.extraJavaOptions", "")
            conf["spark.driver.extraJavaOptions"] = f"{options} -XX:SharedArchiveFile={self.archive}".strip()
        return conf


def spark_conf(
    shuffle_partitions: int = 4,
    ivy_dir: str | None = None,
    extra_conf: dict[str, str] | None = None,
    ivy_settings: str | None = None,
    extra_packages: Sequence[str] = (),
) -> dict[str, str]:
    """The Spark conf of every session here, local or a Connect server's (before its StartupCache applies)."""
    default_ivy = USER_IVY_DIR if extra_packages else REPO_ROOT / ".cache" / "ivy"
    return {
        **BASE_CONF,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        "spark.jars.packages": ",".join([*SPARK_PACKAGES, *extra_packages]),
        "spark.jars.ivy": ivy_dir or str(default_ivy),
        "spark.jars.ivySettings": ivy_settings or str(IVY_SETTINGS),
        **(extra_conf or {}),
    }


def ivy_lock(conf: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
    """Held while a JVM resolves conf's packages: processes starting Spark at once (two runs, two test
    workers) share one Ivy cache, which is not safe to fill concurrently. None needed for recorded jars."""
    if "spark.jars.packages" not in conf:
        return contextlib.nullcontext()
    return file_lock(Path(conf["spark.jars.ivy"]) / ".resolve.lock")


def build_session(
    master: str = "local[*]",
    remote: str | None = None,
    shuffle_partitions: int = 4,
    driver_memory: str = "4g",
    ivy_dir: str | None = None,
    extra_conf: dict[str, str] | None = None,
    ivy_settings: str | None = None,
    extra_packages: Sequence[str] = (),
) -> SparkSession:
    """Return the process-wide SparkSession, creating it with Delta and Kafka support if needed.

    With `remote` (sc://...) it is a Spark Connect client: the server holds Delta and the Kafka
    source, and only the session's SQL settings apply (the server ignores static ones).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    conf = spark_conf(shuffle_partitions, ivy_dir, extra_conf, ivy_settings, extra_packages)
    if remote:
        builder = SparkSession.builder.remote(remote)
        conf = {k: v for k, v in conf.items() if k.startswith(SESSION_SETTINGS) and k not in SERVER_SETTINGS}
    else:
        if master.startswith("local"):  # a local driver listens on loopback only
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers (raw's parse on the Spark engine) run the driver's interpreter, where the project is
        # installed: on a cluster the executors' hosts need it at the same path (the Docker image has it),
        # unless PYSPARK_PYTHON names another.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master).config("spark.driver.memory", driver_memory)
        conf = StartupCache.of(conf).applied(conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    with contextlib.nullcontext() if remote else ivy_lock(conf):
        session = builder.appName("medallion_assets").getOrCreate()
    if not remote:
        session.sparkContext.setLogLevel("WARN")
    return session


# Spark generates, formats and compiles the code of every projection built outside whole-stage code
# generation (the decoder of each collect, Delta's file lists among them; projections in the write
# path), even when the code is cached: a profile of the Connect server during small batches found a
# fifth of its samples there. Interpreted, the downstream run of a 10,000-event batch on 30 days of
# history took 20.1-23.1 s against 25.1-26.8 s (one session, batches alternating); for every run,
# the 1,000,000-event bench's gold took 30 s against 19 s, since tasks then interpret every row.
# So a step interprets them only when its days hold few rows. Spark calls the setting internal; a
# Spark without it would ignore the key and only lose the gain.
CODEGEN_FACTORY_MODE = "spark.sql.codegen.factoryMode"
# At most this many input rows are few: the step interprets its projections, and commits its day
# writes and MERGEs with delta-rs (resources/warehouse.writing_few_rows).
FEW_ROWS = 100_000


@contextlib.contextmanager
def code_generation_for(session: SparkSession, rows: int | None) -> Iterator[bool]:
    """Within the block, the session interprets its standalone projections when a step's input is
    `rows` rows and they are few; when they are many or unknown (None) it generates them, as by
    default. Yields whether it interprets; the session is left as it was."""
    interpreted = rows is not None and rows <= FEW_ROWS
    if interpreted:
        session.conf.set(CODEGEN_FACTORY_MODE, "NO_CODEGEN")
    try:
        yield interpreted
    finally:
        if interpreted:
            session.conf.unset(CODEGEN_FACTORY_MODE)


def spark_context(session: SparkSession) -> SparkContext | None:
    """The session's SparkContext, or None with Spark Connect (the client has none)."""
    try:
        return session.sparkContext
    except Exception:  # Spark Connect raises on sparkContext
        return None


T = TypeVar("T")


def side_by_side(session: SparkSession, actions: Sequence[Callable[[], T]]) -> list[T]:
    """Each action's result, in order, the actions run on threads of their own: a small write spends most
    of its time in the driver (planning, the Delta commit), so writes of different tables overlap. Each
    thread keeps the caller's job group, properties and tags (over Spark Connect, its session and tags)."""
    if len(actions) <= 1:
        return [action() for action in actions]
    inherit = inheritable_thread_target(session)
    with ThreadPoolExecutor(max_workers=len(actions), thread_name_prefix="medallion-spark") as pool:
        return list(pool.map(lambda action: action(), [inherit(action) for action in actions]))


@dataclass
class JobCount:
    """The Spark jobs launched under one job group since `start`: the calling thread's group when it has
    one (someone counts the whole step already), else a group of its own. Job groups are per thread, so
    a worker thread `join`s the group first. Nothing is counted over Spark Connect (no SparkContext)."""

    context: SparkContext | None
    group: str | None = None
    before: int = 0
    own: bool = False

    @classmethod
    def start(cls, session: SparkSession, description: str) -> JobCount:
        """Start counting the jobs launched from the calling thread (and threads that join)."""
        context = spark_context(session)
        if context is None:
            return cls(None)
        group, own = context.getLocalProperty("spark.jobGroup.id"), False
        if group is None:
            group, own = f"medallion-{uuid.uuid4().hex}", True
            context.setJobGroup(group, description)
        return cls(context, group, len(context.statusTracker().getJobIdsForGroup(group)), own)

    def join(self) -> None:
        """Launch this thread's jobs under the counted group."""
        if self.context is not None:
            self.context.setJobGroup(self.group, "")

    def stop(self) -> int | None:
        """The jobs launched since `start` (None when uncounted); a group of its own is left."""
        if self.context is None:
            return None
        count = len(self.context.statusTracker().getJobIdsForGroup(self.group)) - self.before
        if self.own:
            self.context.setLocalProperty("spark.jobGroup.id", None)
            self.context.setLocalProperty("spark.job.description", None)
        return count


class SparkResource(ConfigurableResource):
    """Spark settings; the session starts on first use and is shared by every step of a run."""

    master: str | None = Field(default=None, description="Spark master URL; env SPARK_MASTER, default local[*].")
    remote: str | None = Field(default=None, description="Spark Connect URL (sc://...); env SPARK_REMOTE.")
    shuffle_partitions: int = Field(default=4, description="spark.sql.shuffle.partitions, sized for small data.")
    driver_memory: str = Field(default="4g", description="spark.driver.memory for local mode.")
    ivy_dir: str | None = Field(default=None, description="Fixed Ivy cache for spark.jars.packages.")
    ivy_settings: str | None = Field(
        default=None, description="Ivy settings file (repositories for spark.jars.packages); default Maven Central only."
    )
    extra_conf: dict[str, Any] = Field(default_factory=dict, description="Additional Spark conf entries.")
    _session: SparkSession | None = PrivateAttr(default=None)

    @property
    def session(self) -> SparkSession:
        """The run's SparkSession (started once per process)."""
        return self.session_with()

    @property
    def master_url(self) -> str:
        """The master in effect: the setting, else $SPARK_MASTER, else local[*]."""
        return self.master or EnvVar("SPARK_MASTER").get_value(default="local[*]") or "local[*]"

    @property
    def remote_url(self) -> str | None:
        """The Spark Connect endpoint in effect, if any: the setting, else $SPARK_REMOTE."""
        return self.remote or EnvVar("SPARK_REMOTE").get_value()

    @property
    def runs_locally(self) -> bool:
        """Whether Spark runs in this process only (a local master, no cluster, no Spark Connect); starts nothing."""
        return not self.remote_url and self.master_url.startswith("local")

    def session_with(self, conf: Mapping[str, str] | None = None, packages: Sequence[str] = ()) -> SparkSession:
        """The run's SparkSession, started (once per process) with more conf and packages, such as a warehouse's."""
        if self._session is None:
            self._session = build_session(
                master=self.master_url,
                remote=self.remote_url,
                shuffle_partitions=self.shuffle_partitions,
                driver_memory=self.driver_memory,
                ivy_dir=self.ivy_dir,
                ivy_settings=self.ivy_settings,
                extra_conf={**(conf or {}), **{k: str(v) for k, v in self.extra_conf.items()}},
                extra_packages=packages,
            )
        return self._session
