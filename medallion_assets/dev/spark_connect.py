"""A local Spark Connect server: one warm Spark that every run reaches over gRPC.

The server is the `pyspark` package's own `SparkConnectServer` class, started with
`spark-submit` and the same conf and packages (Delta, the Kafka source) as a local session,
bound to 127.0.0.1. A run that sets `SPARK_REMOTE` is a thin client: it starts no JVM, and the
server's JIT-warmed JVM serves every run, so small runs stop paying a Spark start each.

CLI::

    python -m medallion_assets.dev.spark_connect up|down|status [--port N] [--home DIR]

`up` is idempotent and prints `SPARK_REMOTE=sc://127.0.0.1:<port>` (for `eval "$(...)"`);
`down` stops only the server it started (by the pid in its home).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyspark

from medallion_assets.paths import REPO_ROOT
from medallion_assets.resources.spark import spark_conf

HOST = "127.0.0.1"
DEFAULT_PORT = 15002
DEFAULT_HOME = REPO_ROOT / ".cache" / "spark-connect"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DRIVER_MEMORY = "4g"
START_TIMEOUT_S = 600.0  # the very first start downloads the Delta and Kafka jars
STOP_GRACE_S = 30.0


class SparkConnectError(RuntimeError):
    """The server could not be started or reached."""


@dataclass(frozen=True)
class Server:
    """Where one server's pid file and log live, and the port it serves."""

    home: Path
    port: int = DEFAULT_PORT

    @property
    def pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def remote(self) -> str:
        """The Spark Connect URL of the server."""
        return f"sc://{HOST}:{self.port}"

    def pid(self) -> int | None:
        """The server's pid when the process it started still runs."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if running(pid) else None

    def answers(self) -> bool:
        """Whether the gRPC port accepts connections."""
        with socket.socket() as probe:
            probe.settimeout(1)
            return probe.connect_ex((HOST, self.port)) == 0


def running(pid: int) -> bool:
    """Whether the process runs (a child of this process that exited is reaped, not counted)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # started by another process
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def server_command(port: int) -> list[str]:
    """spark-submit of the Connect server with the pipeline's Spark conf."""
    conf = {
        **spark_conf(),
        "spark.connect.grpc.binding.address": HOST,
        "spark.connect.grpc.binding.port": str(port),
    }
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    args = [str(submit), "--class", SERVER_CLASS, "--name", "medallion_assets-connect", "--master", "local[*]"]
    args += ["--driver-memory", DRIVER_MEMORY]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return [*args, "spark-internal"]


def up(server: Server, timeout_s: float = START_TIMEOUT_S) -> str:
    """Start the server unless it already runs; return its URL once it accepts connections."""
    if server.pid() is not None and server.answers():
        return server.remote
    if server.answers():
        raise SparkConnectError(f"{HOST}:{server.port} is served by a process not started from {server.home}")
    server.home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": HOST}
    env.pop("SPARK_REMOTE", None)
    with open(server.log, "w") as log:
        process = subprocess.Popen(
            server_command(server.port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server.pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SparkConnectError(f"Spark Connect server exited ({process.returncode}):\n{server.log.read_text()[-3000:]}")
        if server.answers():
            return server.remote
        time.sleep(0.5)
    down(server)
    raise SparkConnectError(f"Spark Connect server not answering on {HOST}:{server.port} after {timeout_s:.0f} s; log {server.log}")


def down(server: Server) -> bool:
    """Stop the server this home started (its whole process group); whether one was running."""
    pid = server.pid()
    if pid is None:
        server.pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline and server.pid() is not None:
        time.sleep(0.2)
    if server.pid() is not None:
        os.killpg(pid, signal.SIGKILL)
    server.pid_file.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """up | down | status."""
    parser = argparse.ArgumentParser(prog="python -m medallion_assets.dev.spark_connect", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"gRPC port on {HOST} (default {DEFAULT_PORT})")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"pid file and log (default {DEFAULT_HOME})")
    args = parser.parse_args(argv)
    server = Server(args.home.resolve(), args.port)
    if args.command == "up":
        print(f"SPARK_REMOTE={up(server)}")
    elif args.command == "down":
        print("stopped" if down(server) else "not running", file=sys.stderr)
    else:
        running = server.pid() is not None and server.answers()
        print(f"running {server.remote}" if running else "not running")
        return 0 if running else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
