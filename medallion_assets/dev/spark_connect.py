"""A local Spark Connect server: one warm Spark that every run reaches over gRPC.

The server is the `pyspark` package's own `SparkConnectServer` class, started with
`spark-submit` and the same conf and packages (Delta, the Kafka source) as a local session,
bound to 127.0.0.1. A run that sets `SPARK_REMOTE` is a thin client: it starts no JVM, and the
server's JIT-warmed JVM serves every run, so small runs stop paying a Spark start each.

CLI::

    python -m medallion_assets.dev.spark_connect up|down|status [--port N] [--home DIR]

`up` is idempotent and prints `export SPARK_REMOTE=sc://127.0.0.1:<port>` (for `eval "$(...)"`);
`down` stops only the server it started (by the pid in its home).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from medallion_assets.dev.processes import HOST, HomedService, launch, port_answers, service_main, service_parser, spark_bin, stop
from medallion_assets.paths import REPO_ROOT
from medallion_assets.resources.spark import StartupCache, ivy_lock, spark_conf

DEFAULT_PORT = 15002
DEFAULT_HOME = REPO_ROOT / ".cache" / "spark-connect"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DRIVER_MEMORY = "4g"
START_TIMEOUT_S = 600.0  # the very first start downloads the Delta and Kafka jars


@dataclass(frozen=True)
class Server(HomedService, process="server", scheme="sc"):
    """Where one server's pid file and log live, and the port it serves (`url`: its Spark Connect URL)."""


def server_conf() -> dict[str, str]:
    """The pipeline's Spark conf, with what this machine's StartupCache holds."""
    conf = spark_conf()
    return StartupCache.of(conf).applied(conf)


def server_command(port: int) -> list[str]:
    """spark-submit of the Connect server with the pipeline's Spark conf."""
    conf = {
        **server_conf(),
        "spark.connect.grpc.binding.address": HOST,
        "spark.connect.grpc.binding.port": str(port),
    }
    args = [spark_bin("spark-submit"), "--class", SERVER_CLASS, "--name", "medallion_assets-connect", "--master", "local[*]"]
    args += ["--driver-memory", DRIVER_MEMORY]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return [*args, "spark-internal"]


def up(server: Server, timeout_s: float = START_TIMEOUT_S) -> str:
    """Start the server unless it already runs; return its URL once it accepts connections."""
    if server.serving():
        return server.url
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": HOST}
    env.pop("SPARK_REMOTE", None)
    with ivy_lock(server_conf()):  # it resolves the packages as it starts, into the Ivy cache sessions share
        launch(server, server_command(server.port), env, lambda: port_answers(server.port), "Spark Connect server", timeout_s)
    warm(server, timeout_s)
    return server.url


def warm(server: Server, timeout_s: float) -> None:
    """Run a miniature pipeline step through the new server (spark_warmup --remote, in a process of its own):
    its first run then finds Delta's classes loaded and their hot paths compiled, about 11 s less here."""
    command = [sys.executable, "-m", "medallion_assets.dev.spark_warmup", "--remote", server.url]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env={**os.environ, "SPARK_LOCAL_IP": HOST})
        failure = done.stderr[-2000:] if done.returncode != 0 else None
    except subprocess.TimeoutExpired:
        failure = f"no end after {timeout_s:.0f} s"
    if failure is not None:  # a server that cannot run a step is not handed out
        stop(server.pid_file)
        raise RuntimeError(f"the Spark Connect server at {server.url} failed its warm-up:\n{failure}")


def down(server: Server) -> bool:
    """Stop the server this home started; whether one was running."""
    return stop(server.pid_file)


def main(argv: list[str] | None = None) -> int:
    """up | down | status."""
    parser = service_parser(__spec__.name, __doc__, (DEFAULT_PORT, f"gRPC port on {HOST}"), (DEFAULT_HOME, "pid file and log"))
    return service_main(argv, parser, Server, lambda server: [f"SPARK_REMOTE={up(server)}"], down, lambda server: server.url)


if __name__ == "__main__":
    sys.exit(main())
