"""Make every later local Spark start on this machine cheaper: record the jars the pipeline's packages
resolve to, and archive the classes a Spark job over Delta loads (Java class-data sharing).

Both land in the Ivy cache's `startup` folder (resources/spark.py's StartupCache), keyed by the
packages, pyspark and java, and every local session and Connect server started afterwards uses them:
no Ivy resolution, and Spark's classes mapped from the archive instead of read from jars. A start
without them (a fresh machine, another JDK) is only slower. Running it again is a no-op.

With `--remote sc://...` it instead runs the same miniature step once through a running Spark
Connect server, so that the server's JVM loads Delta's classes and compiles their hot paths before
its first run does (dev/spark_connect.py's `up` does this for every server it starts).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from deltalake import DeltaTable
from pyspark import SparkContext
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from medallion_assets.paths import file_lock
from medallion_assets.resources.spark import BASE_CONF, StartupCache, build_session, spark_conf
from medallion_assets.resources.warehouse import read_files, readable_paths

JVM_EXIT_TIMEOUT_S = 300.0
# The dump's JVM lists every class it cannot archive (signed jars, old class files): expected, not news.
QUIET_ARCHIVE_LOG = "-Xlog:cds=off,cds+dynamic=off"


def exercise(spark: SparkSession, folder: Path) -> None:
    """What a pipeline step does, in miniature: parse JSON, write days of a Delta table, replace one,
    MERGE into it, read days back through a window and an aggregate."""
    table = str(folder / "table")
    events = spark.range(200).select(
        F.to_json(F.struct((F.col("id") % 7).alias("user"), (F.col("id") * 1000).alias("ts"))).alias("value")
    )
    parsed = events.select(F.from_json("value", "user INT, ts BIGINT").alias("e")).select("e.*")
    days = parsed.withColumn("day", F.to_date(F.timestamp_millis(F.col("ts") * 1000)))
    days.write.format("delta").partitionBy("day").save(table)
    first_day = days.agg(F.min("day")).first()[0]
    days.where(F.col("day") == first_day).write.format("delta").mode("overwrite").option(
        "replaceWhere", f"day = '{first_day}'"
    ).save(table)
    days.limit(10).createOrReplaceTempView("warmup_source")
    spark.sql(f"MERGE INTO delta.`{table}` t USING warmup_source s ON t.user <=> s.user AND t.ts <=> s.ts "
              "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")
    latest = F.row_number().over(Window.partitionBy("user").orderBy(F.desc("ts")))
    delta = DeltaTable(table)  # read as the warehouse reads: the log's files, by Spark's Parquet reader
    paths = readable_paths(delta, "day", None)
    assert paths is not None, "a plain table written just now reads from its files"
    read = read_files(spark, table, delta, paths).where(F.col("day") >= first_day)
    read.withColumn("n", latest).where("n = 1").join(read.groupBy("user").count(), "user").collect()
    spark.sql(f"DESCRIBE HISTORY delta.`{table}`").collect()


def stop_jvm(spark: SparkSession) -> None:
    """Stop the session and wait for its JVM to exit (it writes the archive as it exits)."""
    spark.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    gateway.proc.stdin.close()  # the JVM exits when the pipe from Python closes
    gateway.proc.wait(JVM_EXIT_TIMEOUT_S)


def warm_up(cache: StartupCache) -> str:
    """Fill the cache unless it is full; what was done, in words."""
    with file_lock(cache.folder / ".warmup.lock"):
        if cache.archive.is_file() and cache.resolved_jars():
            return f"already warm: {cache.folder}"
        started = time.monotonic()
        cache.archive.unlink(missing_ok=True)  # a dump cannot extend an archive the JVM maps
        partial = cache.archive.with_name(f"{cache.archive.name}.{os.getpid()}")
        options = f"{BASE_CONF['spark.driver.extraJavaOptions']} -XX:ArchiveClassesAtExit={partial} {QUIET_ARCHIVE_LOG}"
        spark = build_session(master="local[2]", extra_conf={"spark.driver.extraJavaOptions": options})
        with tempfile.TemporaryDirectory(prefix="medallion-warmup-") as folder:
            exercise(spark, Path(folder))
        if not cache.resolved_jars():
            cache.record_jars(spark)
        stop_jvm(spark)
        if not partial.is_file():
            raise RuntimeError(f"the JVM wrote no class archive at {partial}")
        partial.replace(cache.archive)
        return f"warmed in {time.monotonic() - started:.0f} s: {cache.folder}"


def warm_server(url: str) -> str:
    """Run `exercise` once through the Connect server at `url`; what was done, in words.

    A Connect client marks its whole process as Spark Connect, so callers run this in a process of its own.
    """
    started = time.monotonic()
    spark = build_session(remote=url)
    try:
        with tempfile.TemporaryDirectory(prefix="medallion-warmup-") as folder:  # the server runs on this machine
            exercise(spark, Path(folder))
    finally:
        spark.stop()
    return f"warmed {url} in {time.monotonic() - started:.0f} s"


def main(argv: list[str] | None = None) -> int:
    """Warm this machine's Spark starts up."""
    parser = argparse.ArgumentParser(prog="python -m medallion_assets.dev.spark_warmup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--remote", metavar="URL", help="warm this Spark Connect server (sc://...) instead of the local start cache")
    args = parser.parse_args(argv)
    print(warm_server(args.remote) if args.remote else warm_up(StartupCache.of(spark_conf())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
