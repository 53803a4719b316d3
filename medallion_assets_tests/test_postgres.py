"""The local PostgreSQL server of dev/postgres.py: on 127.0.0.1 only, a password on every login, never root."""

from __future__ import annotations

import os
import pwd
import stat
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest

from medallion_assets.dev.postgres import SERVER_USER, USER, up
from medallion_assets.dev.processes import HOST, live_pid


def setting(postgres, name: str) -> str:
    with closing(postgres.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", (name,))
        return cursor.fetchone()[0]


def test_the_server_listens_on_localhost_and_takes_its_password_only(postgres):
    lines = dict(line.split("=", 1) for line in up(postgres))  # up again: the running server, the same lines
    assert lines == {
        "DAGSTER_POSTGRES_HOST": HOST,
        "DAGSTER_POSTGRES_PORT": str(postgres.port),
        "DAGSTER_POSTGRES_USER": USER,
        "DAGSTER_POSTGRES_PASSWORD": postgres.password(),
        "DAGSTER_POSTGRES_DB": "dagster",
    }
    assert setting(postgres, "listen_addresses") == HOST
    assert setting(postgres, "unix_socket_directories") == str(postgres.sockets)
    assert stat.S_IMODE((postgres.home / "password").stat().st_mode) == 0o600
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host=HOST, port=postgres.port, user=USER, password="not-the-password", dbname="postgres")
    assert postgres.password() not in postgres.log.read_text()


def test_the_server_does_not_run_as_root(postgres):
    pid = live_pid(postgres.pid_file)
    assert pid is not None
    owner = Path(f"/proc/{pid}").stat().st_uid
    assert owner == (pwd.getpwnam(SERVER_USER).pw_uid if os.geteuid() == 0 else os.geteuid())


def test_databases_come_and_go(postgres):
    postgres.create_database("scratch_db")
    postgres.create_database("scratch_db")  # idempotent
    with closing(postgres.connect("scratch_db")) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone()[0] == "scratch_db"
    postgres.drop_database("scratch_db")
    with pytest.raises(psycopg2.OperationalError, match="does not exist"):
        postgres.connect("scratch_db")
