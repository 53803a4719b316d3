"""Background services of the dev commands: started detached, known by a pid file, stopped by it."""

from __future__ import annotations

import argparse
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
from typing import ClassVar, TypeVar

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
    process_name: ClassVar[str] = "service"  # names the pid file and log
    scheme: ClassVar[str] = "tcp"  # of the service's URL

    def __init_subclass__(cls, process: str = "service", scheme: str = "tcp", **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.process_name, cls.scheme = process, scheme

    @property
    def url(self) -> str:
        """Where clients reach the service."""
        return f"{self.scheme}://{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        """The process's pid, while it runs."""
        return self.home / f"{self.process_name}.pid"

    @property
    def log(self) -> Path:
        """The process's output, next to its pid file."""
        return self.pid_file.with_suffix(".log")

    def running(self) -> bool:
        """Whether the process this home started runs and its port answers."""
        return live_pid(self.pid_file) is not None and port_answers(self.port)

    def serving(self) -> bool:
        """Whether this home's process already serves; an error when another process holds the port."""
        if self.running():
            return True
        refuse_taken_port(self.port, self.home)
        return False


def refuse_taken_port(port: int, home: Path) -> None:
    """An error when a process not started from `home` answers on the port a service of it needs."""
    if port_answers(port):
        raise ServiceError(f"{HOST}:{port} is served by a process not started from {home}")


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


Service = TypeVar("Service", bound=HomedService)


def service_parser(module: str, doc: str | None, port: tuple[int, str], home: tuple[Path, str]) -> argparse.ArgumentParser:
    """The `up | down | status` command line of a dev service: its (default port, what it is) and (default home, what it holds)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=(doc or "").split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--port", type=int, default=port[0], help=f"{port[1]} (default {port[0]})")
    parser.add_argument("--home", type=Path, default=home[0], help=f"{home[1]} (default {home[0]})")
    return parser


def service_main(
    argv: Sequence[str] | None,
    parser: argparse.ArgumentParser,
    service: Callable[[Path, int], Service],
    up: Callable[[Service], list[str]],
    down: Callable[[Service], bool],
    address: Callable[[Service], str],
) -> int:
    """Run a dev service's command line on the service its --home and --port name."""
    args = parser.parse_args(argv)
    served = service(args.home.resolve(), args.port)
    return run_command(args.command, lambda: up(served), lambda: down(served), lambda: address(served) if served.running() else None)


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
