from __future__ import annotations

import os

import pytest

from medallion_assets.dev.kafka_local import ensure_broker, stop_broker
from medallion_assets.paths import REPO_ROOT
from medallion_assets.resources.spark import build_session

KAFKA_TEST_HOME = REPO_ROOT / ".cache" / "kafka-test"


@pytest.fixture(scope="session")
def kafka_bootstrap():
    """Bootstrap servers of a local single-node Kafka broker shared by the test session."""
    port = int(os.environ.get("MEDALLION_TEST_KAFKA_PORT", "19092"))
    bootstrap = ensure_broker(home=KAFKA_TEST_HOME, port=port, topics=())
    yield bootstrap
    stop_broker(KAFKA_TEST_HOME)


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test session (the pipeline's resource reuses it)."""
    session = build_session(shuffle_partitions=2, driver_memory="3g")
    yield session
    session.stop()
