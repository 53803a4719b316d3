"""A local PostgreSQL server for the Dagster instance's storage: the machine's own `postgres` on 127.0.0.1.

The server is Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`, or `postgres` on
PATH); `make test` installs it when missing. Its cluster lives in the service's home: created on the
first `up` with a superuser `dagster` whose password is generated then and kept, readable by the
owner only, in that home. It listens on 127.0.0.1 only, its Unix socket stays in the home, and
password authentication (SCRAM) is required on every connection. Started by root, it runs as the
`postgres` user, since the server refuses to run as root; its cluster and socket then live in a
directory of /var/tmp named after the home (that user may not reach the home), the password, pid
file and log still in the home.

CLI::

    python -m medallion_assets.dev.postgres up|down|status [--port N] [--home DIR]

`up` is idempotent and prints `export DAGSTER_POSTGRES_HOST=127.0.0.1`, `DAGSTER_POSTGRES_PORT`,
`DAGSTER_POSTGRES_USER`, `DAGSTER_POSTGRES_PASSWORD` and `DAGSTER_POSTGRES_DB` (the names
docker/dagster.yaml and the local instance's Postgres storage read), for `eval "$(...)"`; `down`
stops only the server it started (by the pid in its home). The data stays in the home.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from medallion_assets.dev.processes import (
    HOST,
    HomedService,
    ServiceError,
    launch,
    service_main,
    service_parser,
    stop,
    write_private,
)
from medallion_assets.paths import REPO_ROOT

DEFAULT_PORT = 5433  # next to a system server's 5432
DEFAULT_HOME = REPO_ROOT / ".cache" / "postgres"
USER = "dagster"
DATABASE = "dagster"
SERVER_USER = "postgres"  # who runs the server when we are root
DEBIAN_SERVERS = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60.0
# Where a root-started server keeps its cluster: its user may not traverse the home's parents (/root is 0700).
ROOT_CLUSTERS = Path("/var/tmp/medallion_assets-postgres")


def server_bin(name: str) -> str:
    """A program of the PostgreSQL server (postgres, initdb): beside `postgres` on PATH, else Debian's newest version."""
    found = shutil.which("postgres")
    if found:
        return str(Path(found).resolve().with_name(name))
    versions = [p for p in DEBIAN_SERVERS.glob("*/bin/postgres") if p.parents[1].name.isdigit()]
    if not versions:
        raise ServiceError("PostgreSQL's server is missing: install Debian's postgresql (apt-get install -y postgresql)")
    return str(max(versions, key=lambda p: int(p.parents[1].name)).with_name(name))


def as_server_user(command: Sequence[str]) -> list[str]:
    """The command run as the `postgres` user when we are root (setpriv execs it: the pid stays the server's)."""
    if os.geteuid() != 0:
        return list(command)
    return ["setpriv", f"--reuid={SERVER_USER}", f"--regid={SERVER_USER}", "--init-groups", *command]


def hand_over(path: Path) -> None:
    """Give a file or directory of the cluster to the user the server runs as (when we are root), for it alone."""
    path.chmod(0o700 if path.is_dir() else 0o600)
    if os.geteuid() == 0:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(path, account.pw_uid, account.pw_gid)


def own(path: Path) -> None:
    """A directory of the cluster, created if missing, handed over to the server's user."""
    path.mkdir(parents=True, exist_ok=True)
    hand_over(path)


@dataclass(frozen=True)
class Server(HomedService, process="postgres", scheme="postgresql"):
    """Where one server's cluster, password, pid file and log live, and its port."""

    @property
    def cluster(self) -> Path:
        """The server's own files (data, socket): the home, or, started by root, a directory of its own
        under ROOT_CLUSTERS named after the home, which the `postgres` user can reach wherever the home is."""
        if os.geteuid() != 0:
            return self.home
        return ROOT_CLUSTERS / hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:16]

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.cluster / "data"

    @property
    def sockets(self) -> Path:
        """The directory of the server's Unix socket."""
        return self.cluster / "run"

    @property
    def password_file(self) -> Path:
        """The superuser's password, owner-only."""
        return self.home / "password"

    def password(self) -> str:
        """The superuser's password, generated on first use (file mode 0600)."""
        if not self.password_file.exists():
            write_private(self.password_file, secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    def variables(self, database: str = DATABASE) -> dict[str, str]:
        """The variables that point a Dagster instance's Postgres storage at one database of this server."""
        settings = {"HOST": HOST, "PORT": str(self.port), "USER": USER, "PASSWORD": self.password(), "DB": database}
        return {f"DAGSTER_POSTGRES_{key}": value for key, value in settings.items()}

    def environment(self, database: str = DATABASE) -> list[str]:
        """The same as KEY=value lines."""
        return [f"{key}={value}" for key, value in self.variables(database).items()]

    def connect(self, database: str = "postgres") -> psycopg2.extensions.connection:
        """A connection as the superuser, in autocommit mode."""
        connection = psycopg2.connect(
            host=HOST, port=self.port, user=USER, password=self.password(), dbname=database, connect_timeout=2
        )
        connection.autocommit = True
        return connection

    def accepts_logins(self) -> bool:
        """Whether the server answers a login with the password."""
        try:
            self.connect().close()
        except psycopg2.OperationalError:
            return False
        return True

    def create_database(self, name: str) -> None:
        """Create a database unless it exists."""
        with closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """Drop a database, closing its connections."""
        with closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def init_cluster(server: Server) -> None:
    """Create the cluster (initdb) unless the home holds one: superuser `dagster`, SCRAM passwords, UTF-8."""
    if (server.data / "PG_VERSION").exists():
        if server.password_file.exists():
            return
        if server.cluster == server.home:
            raise ServiceError(f"{server.data} holds a cluster but {server.password_file} is gone: remove {server.home} to start over")
        shutil.rmtree(server.cluster)  # left by an earlier home at the same path, whose password went with it
    own(server.sockets)
    password_file = write_private(server.sockets / "initdb-password", server.password())
    hand_over(password_file)
    own(server.data)
    command = [server_bin("initdb"), "-D", str(server.data), "-U", USER, "-A", "scram-sha-256", f"--pwfile={password_file}"]
    try:
        done = subprocess.run(
            as_server_user([*command, "-E", "UTF8", "--no-locale"]), cwd=server.data, capture_output=True, text=True, timeout=120
        )
    finally:
        password_file.unlink(missing_ok=True)
    if done.returncode != 0:
        shutil.rmtree(server.data, ignore_errors=True)
        raise ServiceError(f"initdb failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def server_command(server: Server) -> list[str]:
    """`postgres` on 127.0.0.1 only, its Unix socket in the home, logging to stderr (the service's log)."""
    settings = {"listen_addresses": HOST, "port": str(server.port), "unix_socket_directories": str(server.sockets)}
    args = [server_bin("postgres"), "-D", str(server.data)]
    for key, value in {**settings, "logging_collector": "off"}.items():
        args += ["-c", f"{key}={value}"]
    return as_server_user(args)


def up(server: Server, timeout_s: float = START_TIMEOUT_S) -> list[str]:
    """Start the server unless it already runs; its environment lines once the `dagster` database exists."""
    if not server.serving():
        server.home.mkdir(parents=True, exist_ok=True)
        init_cluster(server)
        own(server.sockets)
        launch(server, server_command(server), dict(os.environ), server.accepts_logins, "PostgreSQL", timeout_s)
    server.create_database(DATABASE)
    return server.environment()


def down(server: Server) -> bool:
    """Stop the server this home started (fast shutdown); whether one was running. Its data stays."""
    return stop(server.pid_file, signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    """up | down | status."""
    parser = service_parser(__spec__.name, __doc__, (DEFAULT_PORT, f"port on {HOST}"), (DEFAULT_HOME, "cluster, password, pid file, log"))
    return service_main(argv, parser, Server, up, down, lambda server: f"postgresql://{USER}@{HOST}:{server.port}/{DATABASE}")


if __name__ == "__main__":
    sys.exit(main())
