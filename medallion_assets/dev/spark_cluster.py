"""A local Spark standalone cluster: a master and two workers, each its own JVM on 127.0.0.1.

They are the `pyspark` package's own launch classes (`spark-class ...deploy.master.Master`,
`...deploy.worker.Worker`). A run that sets `SPARK_MASTER` is the driver; its executors run in
the workers' JVMs and get Delta and the Kafka source from the driver (`spark.jars.packages`).

CLI::

    python -m medallion_assets.dev.spark_cluster up|down|status [--port N] [--workers N] [--home DIR]

`up` is idempotent and prints `export SPARK_MASTER=spark://127.0.0.1:<port>` and `SPARK_LOCAL_IP`
(for `eval "$(...)"`); `down` stops only the processes it started (by the pids in its home).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from medallion_assets.dev.processes import (
    HOST,
    ServiceError,
    live_pid,
    port_answers,
    refuse_taken_port,
    run_command,
    service_parser,
    spark_bin,
    start,
    stop,
    wait_until,
)
from medallion_assets.paths import REPO_ROOT

DEFAULT_PORT = 7077
DEFAULT_WORKERS = 2
DEFAULT_HOME = REPO_ROOT / ".cache" / "spark-cluster"
WORKER_CORES = 1
WORKER_MEMORY = "2g"
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Cluster:
    """Where one cluster's pid files, logs and worker directories live, and its master's ports."""

    home: Path
    port: int = DEFAULT_PORT
    workers: int = DEFAULT_WORKERS

    @property
    def web_port(self) -> int:
        """The master's web UI port (its JSON status tells how many workers registered)."""
        return self.port + 1000

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def pid_file(self, name: str) -> Path:
        return self.home / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    @property
    def names(self) -> list[str]:
        """The master first, then the workers."""
        return ["master", *(f"worker-{i}" for i in range(1, self.workers + 1))]

    def alive_workers(self) -> int:
        """Workers the master counts as alive (0 when it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.web_port}/json/", timeout=2) as response:
                return int(json.load(response).get("aliveworkers", 0))
        except (OSError, ValueError):
            return 0

    def running(self) -> bool:
        """Whether every process this home started runs and every worker registered."""
        return all(live_pid(self.pid_file(n)) is not None for n in self.names) and self.alive_workers() >= self.workers


def environment_lines(cluster: Cluster) -> list[str]:
    """What a driver needs to use the cluster."""
    return [f"SPARK_MASTER={cluster.master_url}", f"SPARK_LOCAL_IP={HOST}"]


def up(cluster: Cluster) -> list[str]:
    """Start the master and the workers unless they run; the environment lines once all workers registered."""
    if cluster.running():
        return environment_lines(cluster)
    down(cluster)  # a partly running cluster from an earlier start
    refuse_taken_port(cluster.port, cluster.home)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": HOST,
        "SPARK_WORKER_DIR": str(cluster.home / "work"),
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",  # no REST submission port (6066) to collide on
        "PYSPARK_PYTHON": sys.executable,
    }
    master_class = "org.apache.spark.deploy.master.Master"
    master = start(
        [spark_bin("spark-class"), master_class, "--host", HOST, "--port", str(cluster.port), "--webui-port", str(cluster.web_port)],
        cluster.pid_file("master"), cluster.log("master"), env,
    )
    try:
        wait_until(lambda: port_answers(cluster.port), master, cluster.log("master"), "Spark master", START_TIMEOUT_S)
        worker_class = "org.apache.spark.deploy.worker.Worker"
        for name in cluster.names[1:]:
            worker = start(
                [spark_bin("spark-class"), worker_class, cluster.master_url, "--host", HOST, "--cores", str(WORKER_CORES),
                 "--memory", WORKER_MEMORY, "--webui-port", "0", "--work-dir", str(cluster.home / "work" / name)],
                cluster.pid_file(name), cluster.log(name), env,
            )
        wait_until(lambda: cluster.alive_workers() >= cluster.workers, worker, cluster.log(name), "Spark workers", START_TIMEOUT_S)
    except ServiceError:
        down(cluster)
        raise
    return environment_lines(cluster)


def down(cluster: Cluster) -> bool:
    """Stop the workers, then the master; whether any was running."""
    stopped = [stop(cluster.pid_file(name)) for name in reversed(cluster.names)]
    return any(stopped)


def main(argv: list[str] | None = None) -> int:
    """up | down | status."""
    parser = service_parser(__spec__.name, __doc__, (DEFAULT_PORT, f"master port on {HOST}, its web UI at port + 1000"), (DEFAULT_HOME, "pid files, logs, worker directories"))
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help=f"workers, {WORKER_CORES} core each (default {DEFAULT_WORKERS})")
    args = parser.parse_args(argv)
    cluster = Cluster(args.home.resolve(), args.port, args.workers)
    return run_command(args.command, lambda: up(cluster), lambda: down(cluster), lambda: cluster.master_url if cluster.running() else None)


if __name__ == "__main__":
    sys.exit(main())
