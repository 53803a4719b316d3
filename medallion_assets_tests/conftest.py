from __future__ import annotations

import pytest

from medallion_assets.dev.kafka_local import REPO_ROOT, ensure_broker, stop_broker
from medallion_assets.resources.spark import build_session

KAFKA_TEST_HOME = REPO_ROOT / ".cache" / "kafka-test"
KAFKA_TEST_PORT = 19092


@pytest.fixture(scope="session")
def kafka_bootstrap():
    """Bootstrap servers of a local single-node Kafka broker shared by the test session."""
    bootstrap = ensure_broker(home=KAFKA_TEST_HOME, port=KAFKA_TEST_PORT, topics=())
    yield bootstrap
    stop_broker(KAFKA_TEST_HOME)


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test session (the pipeline's resource reuses it)."""
    session = build_session(shuffle_partitions=2, driver_memory="3g")
    yield session
    session.stop()
