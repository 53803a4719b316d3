"""Background services of the dev commands: started detached, known by a pid file, stopped by it."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyspark

HOST = "127.0.0.1"
STOP_GRACE_S = 30.0


class ServiceError(RuntimeError):
    """A service could not be started or reached."""


def spark_bin(name: str) -> str:
    """A launcher script of the `pyspark` package (spark-submit, spark-class)."""
    return str(Path(pyspark.__file__).parent / "bin" / name)


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


def live_pid(pid_file: Path) -> int | None:
    """The pid in the file when that process still runs."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if running(pid) else None


def port_answers(port: int) -> bool:
    """Whether a TCP port on 127.0.0.1 accepts connections."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


def start(command: Sequence[str], pid_file: Path, log: Path, env: Mapping[str, str]) -> subprocess.Popen:
    """Start a command in its own process group, output to `log`, pid in `pid_file`."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        process = subprocess.Popen(list(command), env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write_text(str(process.pid))
    return process


def wait_until(ready: Callable[[], bool], process: subprocess.Popen, log: Path, what: str, timeout_s: float) -> None:
    """Wait for `ready()` while the process lives; a clear error with the log's tail otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{what} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.5)
    raise ServiceError(f"{what} not ready after {timeout_s:.0f} s; log {log}")


@dataclass(frozen=True)
class HomedService:
    """A service of one process: its pid file and log in its home, and the port it answers on."""

    home: Path
    port: int
    process_name: ClassVar[str] = "service"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.process_name}.pid"

    @property
    def log(self) -> Path:
        return self.home / f"{self.process_name}.log"

    def running(self) -> bool:
        """Whether the process this home started runs and its port answers."""
        return live_pid(self.pid_file) is not None and port_answers(self.port)


def launch(service: HomedService, command: Sequence[str], env: Mapping[str, str], ready: Callable[[], bool], what: str, timeout_s: float) -> None:
    """Start the service's process and wait until `ready()`; a service that never gets ready is stopped."""
    process = start(command, service.pid_file, service.log, env)
    try:
        wait_until(ready, process, service.log, what, timeout_s)
    except ServiceError:
        stop(service.pid_file)
        raise


def stop(pid_file: Path, first: signal.Signals = signal.SIGTERM) -> bool:
    """Stop the process group the pid file names (`first`, TERM by default, then KILL after a grace); whether one ran."""
    pid = live_pid(pid_file)
    if pid is not None:
        os.killpg(pid, first)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and running(pid):
            time.sleep(0.2)
        if running(pid):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid is not None


def run_command(command: str, up: Callable[[], list[str]], down: Callable[[], bool], where: Callable[[], str | None]) -> int:
    """A dev service's `up`, `down` or `status` (where it runs, if it does).

    `up` prints its KEY=value lines as `export KEY=value`, so `eval "$(... up)"` hands them to every
    command the shell starts next (`make demo`, `dagster dev`).
    """
    if command == "up":
        for line in up():
            key, value = line.split("=", 1)
            print(f"export {key}={shlex.quote(value)}")
    elif command == "down":
        print("stopped" if down() else "not running", file=sys.stderr)
    else:
        address = where()
        print(f"running {address}" if address else "not running")
        return 0 if address else 1
    return 0


def write_private(path: Path, text: str) -> Path:
    """Write a file only its owner may read (mode 0600 from the moment it exists): keys, passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path
