"""The Dagster instance configurations the project ships (local, SQLite or Postgres, and Docker) load and
hold runs that write below raw to one at a time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, QueuedRunCoordinator
from dagster_postgres import PostgresRunStorage

from medallion_assets.dev import dagster_home
from medallion_assets.dev.dagster_home import instance_config, write

pytestmark = pytest.mark.fast

REPO = Path(__file__).resolve().parents[1]
DOCKER_HOME = "/opt/dagster/home"


def docker_config() -> dict:
    return yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())


def assert_one_run_per_pool(instance: DagsterInstance) -> None:
    """The queue launches runs, looking at it every second, and gives every pool one slot held for a whole run."""
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert instance.run_coordinator.dequeue_interval_seconds == 1
    pools = instance.get_concurrency_config().pool_config
    assert pools.pool_granularity is not None and pools.pool_granularity.value == "run"
    assert pools.default_pool_limit == 1


def test_the_local_instance_is_sqlite_and_one_run_per_pool(tmp_path):
    write(tmp_path, "sqlite")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert_one_run_per_pool(instance)
        assert not isinstance(instance.run_storage, PostgresRunStorage)
    assert (tmp_path / "history" / "runs.db").exists()


def test_the_docker_instance_is_one_run_per_pool_with_run_retries(tmp_path):
    # Its Postgres storage needs a server (the live test loads the same section); the rest loads here.
    config = {key: value for key, value in docker_config().items() if key != "storage"}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config).replace(DOCKER_HOME, str(tmp_path)))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert_one_run_per_pool(instance)
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2


def test_docker_and_local_instances_share_their_run_queue_concurrency_and_postgres_storage():
    docker, local = docker_config(), instance_config("postgres")
    assert local["concurrency"] == docker["concurrency"] == instance_config("sqlite")["concurrency"]
    assert local["run_coordinator"] == docker["run_coordinator"] == instance_config("sqlite")["run_coordinator"]
    assert local["storage"] == docker["storage"]
    assert local["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_POSTGRES_PASSWORD"}
    assert "storage" not in instance_config("sqlite")


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_the_storage_variable_chooses_what_the_home_gets(tmp_path, monkeypatch, storage):
    monkeypatch.setenv("MEDALLION_DAGSTER_STORAGE", storage)
    assert dagster_home.main(["--home", str(tmp_path)]) == 0
    assert yaml.safe_load((tmp_path / "dagster.yaml").read_text()) == instance_config(storage)


def test_an_unknown_storage_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDALLION_DAGSTER_STORAGE", "mysql")
    with pytest.raises(SystemExit):
        dagster_home.main(["--home", str(tmp_path)])
    assert "MEDALLION_DAGSTER_STORAGE=mysql" in capsys.readouterr().err
    assert not (tmp_path / "dagster.yaml").exists()
