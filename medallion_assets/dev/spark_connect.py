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

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from medallion_assets.dev.processes import HOST, HomedService, ServiceError, launch, port_answers, run_command, spark_bin, stop
from medallion_assets.paths import REPO_ROOT
from medallion_assets.resources.spark import StartupCache, ivy_lock, spark_conf

DEFAULT_PORT = 15002
DEFAULT_HOME = REPO_ROOT / ".cache" / "spark-connect"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DRIVER_MEMORY = "4g"
START_TIMEOUT_S = 600.0  # the very first start downloads the Delta and Kafka jars


@dataclass(frozen=True)
class Server(HomedService):
    """Where one server's pid file and log live, and the port it serves."""

    port: int = DEFAULT_PORT
    process_name: ClassVar[str] = "server"

    @property
    def remote(self) -> str:
        """The Spark Connect URL of the server."""
        return f"sc://{HOST}:{self.port}"


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
    if server.running():
        return server.remote
    if port_answers(server.port):
        raise ServiceError(f"{HOST}:{server.port} is served by a process not started from {server.home}")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": HOST}
    env.pop("SPARK_REMOTE", None)
    with ivy_lock(server_conf()):  # it resolves the packages as it starts, into the Ivy cache sessions share
        launch(server, server_command(server.port), env, lambda: port_answers(server.port), "Spark Connect server", timeout_s)
    return server.remote


def down(server: Server) -> bool:
    """Stop the server this home started; whether one was running."""
    return stop(server.pid_file)


def main(argv: list[str] | None = None) -> int:
    """up | down | status."""
    parser = argparse.ArgumentParser(prog="python -m medallion_assets.dev.spark_connect", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"gRPC port on {HOST} (default {DEFAULT_PORT})")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"pid file and log (default {DEFAULT_HOME})")
    args = parser.parse_args(argv)
    server = Server(args.home.resolve(), args.port)
    return run_command(
        args.command, lambda: [f"SPARK_REMOTE={up(server)}"], lambda: down(server), lambda: server.remote if server.running() else None
    )


if __name__ == "__main__":
    sys.exit(main())
