from __future__ import annotations

import os
from pathlib import Path

import pytest

from medallion_assets.paths import REPO_ROOT


def worker_index() -> int:
    """Which of pytest-xdist's workers this process is (gw0, gw1, ...); 0 without workers."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def service_home(name: str) -> Path:
    """A test service's home under .cache: one per worker, so workers never share a server."""
    index = worker_index()
    return REPO_ROOT / ".cache" / (name if index == 0 else f"{name}-gw{index}")


# Workers' ports lie this far apart; every service here uses fewer consecutive ports (weed: 6).
PORTS_PER_WORKER = 300


def service_port(variable: str, default: int) -> int:
    """A test service's port (the variable overrides the default), shifted for each worker."""
    return int(os.environ.get(variable, str(default))) + PORTS_PER_WORKER * worker_index()


# Modules that start services or run the pipeline many times run first: workers taking whole
# modules in this order (`make test` runs two) finish at about the same time.
SLOWEST_FIRST = (
    "test_scale_out", "test_incremental", "test_orchestration", "test_pipeline", "test_demo",
    "test_kafka_cluster", "test_crash", "test_bad_input", "test_data_quality",
)


# Fixtures that start a service: a JVM (Spark, a Spark Connect server), a broker, an object store or a
# database server; a test marked `fast` must use none.
SERVICE_FIXTURES = frozenset({"spark", "kafka_bootstrap", "spark_remote", "spark_cluster", "object_store", "postgres", "kafka_cluster"})


def _fast_only(config: pytest.Config) -> bool:
    """Whether this session runs the fast tier only (`pytest -m fast`)."""
    return config.getoption("markexpr", "").strip() == "fast"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slowest modules first; and a fast test that needs a service fixture (JVM, broker, server) is a
    mistake: fail it at collection, loudly."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))  # stable: order within a module kept
    for item in items:
        if item.get_closest_marker("fast") is None:
            continue
        used = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if used:
            raise pytest.UsageError(f"{item.nodeid} is marked fast but uses {sorted(used)}, which start services")


def _refuse_in_fast_run(request: pytest.FixtureRequest, what: str) -> None:
    if _fast_only(request.config):
        pytest.fail(f"{what} requested during a fast-only run (-m fast): fast tests must not start Java or other services")


@pytest.fixture(scope="session")
def kafka_bootstrap(request):
    """Bootstrap servers of a local single-node Kafka broker shared by the test session."""
    _refuse_in_fast_run(request, "the Kafka broker")
    from medallion_assets.dev.kafka_local import ensure_broker, stop_broker

    home, port = service_home("kafka-test"), service_port("MEDALLION_TEST_KAFKA_PORT", 19092)
    bootstrap = ensure_broker(home=home, port=port, topics=())
    yield bootstrap
    stop_broker(home)


@pytest.fixture(scope="module")
def kafka_cluster(request):
    """Three KRaft brokers behind SASL_SSL (SCRAM-SHA-512 users, TLS from a local CA), for one module."""
    _refuse_in_fast_run(request, "the Kafka cluster")
    from medallion_assets.dev.kafka_local import Cluster, ensure_cluster, stop_cluster

    port = service_port("MEDALLION_TEST_KAFKA_CLUSTER_PORT", 19292)
    cluster = Cluster(service_home("kafka-cluster-test"), brokers=3, port=port, secured=True)
    ensure_cluster(cluster, topics=())
    yield cluster
    stop_cluster(cluster.home)


@pytest.fixture(scope="session")
def spark(request):
    """The one SparkSession of the test session (the pipeline's resource reuses it)."""
    _refuse_in_fast_run(request, "the Spark session")
    from medallion_assets.resources.spark import build_session

    session = build_session(shuffle_partitions=2, driver_memory="3g")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_remote(request):
    """SPARK_REMOTE of a Spark Connect server shared by the test session (a warm Spark for the
    tests that run the pipeline in other processes: the CLI, the daemon)."""
    _refuse_in_fast_run(request, "the Spark Connect server")
    from medallion_assets.dev.spark_connect import Server, down, up

    server = Server(service_home("spark-connect-test"), service_port("MEDALLION_TEST_CONNECT_PORT", 15012))
    yield up(server)
    down(server)


@pytest.fixture(scope="session")
def spark_cluster(request):
    """The environment (SPARK_MASTER, SPARK_LOCAL_IP) of a standalone master with two workers."""
    _refuse_in_fast_run(request, "the Spark cluster")
    from medallion_assets.dev.spark_cluster import Cluster, down, up

    cluster = Cluster(service_home("spark-cluster-test"), service_port("MEDALLION_TEST_SPARK_MASTER_PORT", 17077))
    yield dict(line.split("=", 1) for line in up(cluster))
    down(cluster)


@pytest.fixture(scope="session")
def object_store(request):
    """The environment (MEDALLION_WAREHOUSE, MEDALLION_S3_ENDPOINT, credentials) of a local S3 store."""
    _refuse_in_fast_run(request, "the object store")
    from medallion_assets.dev.object_store import Store, down, up

    store = Store(service_home("object-store-test"), service_port("MEDALLION_TEST_S3_PORT", 18433))
    yield dict(line.split("=", 1) for line in up(store))
    down(store)


@pytest.fixture(scope="session")
def postgres(request):
    """A local PostgreSQL server (dev/postgres.py) shared by the test session; each user creates its own database."""
    _refuse_in_fast_run(request, "the PostgreSQL server")
    from medallion_assets.dev.postgres import Server, down, up

    server = Server(service_home("postgres-test"), service_port("MEDALLION_TEST_POSTGRES_PORT", 15432))
    up(server)
    yield server
    down(server)
