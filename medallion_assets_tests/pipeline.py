"""Running the real pipeline in tests: topics on the test broker, a warehouse in a temp dir."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize
from deltalake import DeltaTable as RsDeltaTable

from medallion_assets.definitions import all_assets
from medallion_assets.definitions import resources as default_resources
from medallion_assets.topics import client_settings, create_topics
from medallion_assets.generator import Event, write_kafka
from medallion_assets.orchestration.jobs import PIPELINE
from medallion_assets.resources.kafka import KafkaResource
from medallion_assets.resources.warehouse import WarehouseResource
from medallion_assets.runs import materialize_days
from medallion_assets.schemas import TOPICS
from medallion_assets.tables import Table

NOT_RAW = PIPELINE - AssetSelection.groups("raw")


@dataclass
class LivePipeline:
    """One warehouse fed by one set of topics on the test broker."""

    bootstrap: str
    prefix: str
    root: Path
    instance: DagsterInstance
    records_per_read_task: int | None = None  # None: the Kafka resource's default
    raw_engine: str | None = None  # None: the Kafka resource's default (auto)

    @classmethod
    def create(cls, bootstrap: str, root: Path, records_per_read_task: int | None = None) -> LivePipeline:
        """Fresh topics (unique prefix) and an empty warehouse; security settings come from the environment."""
        prefix = f"t{uuid.uuid4().hex[:10]}-"
        create_topics(client_settings(bootstrap), [prefix + t for t in TOPICS], partitions=3)
        return cls(bootstrap, prefix, root, DagsterInstance.ephemeral(), records_per_read_task)

    def sharing_topics(self, root: Path) -> LivePipeline:
        """A second warehouse fed by the same topics, with its own run history."""
        return LivePipeline(self.bootstrap, self.prefix, root, DagsterInstance.ephemeral())

    def copy_of_raw(self, root: Path) -> LivePipeline:
        """A second warehouse starting from a copy of this one's raw tables (what ingesting the same
        topics again would write, without a second raw run), with its own run history."""
        shutil.copytree(self.root / "raw", root / "raw")
        return self.sharing_topics(root)

    @property
    def resources(self) -> dict[str, Any]:
        """Resources pointing at this pipeline's topics and warehouse."""
        return {
            **default_resources,
            "kafka": KafkaResource(
                bootstrap_servers=self.bootstrap,
                topic_prefix=self.prefix,
                **({"records_per_read_task": self.records_per_read_task} if self.records_per_read_task else {}),
                **({"raw_engine": self.raw_engine} if self.raw_engine else {}),
            ),
            "warehouse": WarehouseResource(root=str(self.root)),
        }

    def cli_env(self, dagster_home: Path) -> dict[str, str]:
        """Environment of a `dagster` command on this pipeline: only variables configure it."""
        dagster_home.mkdir(exist_ok=True)
        return {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            "MEDALLION_WAREHOUSE": str(self.root),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "MEDALLION_TOPIC_PREFIX": self.prefix,
        }

    def produce(self, events: Sequence[Event]) -> None:
        """Write events (topic names without prefix are prefixed) to the broker."""
        prefixed = [e if e.topic.startswith(self.prefix) else e._replace(topic=self.prefix + e.topic) for e in events]
        write_kafka(prefixed, client_settings(self.bootstrap), progress=False)

    def on_engine(self, raw_engine: str) -> LivePipeline:
        """This pipeline (same topics, warehouse and run history) ingesting on another raw engine."""
        return replace(self, raw_engine=raw_engine)

    def ingest(self) -> ExecuteInProcessResult:
        """One run of the raw assets."""
        return materialize(
            all_assets, selection=AssetSelection.groups("raw"), resources=self.resources, instance=self.instance
        )

    def run_days(self, first: date, last: date, selection: AssetSelection = NOT_RAW, **kwargs: Any) -> ExecuteInProcessResult:
        """One run of the selection over days first..last."""
        return materialize_days(first, last, selection=selection, resources=self.resources, instance=self.instance, **kwargs)

    def uri(self, table: Table) -> str:
        """Location of a table of this warehouse."""
        return f"{self.root}/{table.path}"

    def rows(self, table: Table) -> int:
        """Row count read with delta-rs."""
        return RsDeltaTable(self.uri(table)).to_pyarrow_dataset().count_rows()
