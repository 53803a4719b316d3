"""Sensors: Kafka lag -> ingestion, raw materializations -> bronze, silver and gold, changed reference files -> observation."""

from medallion_assets.orchestration.sensors.kafka_offsets import KafkaSensorSettings, kafka_offsets_sensor
from medallion_assets.orchestration.sensors.raw_to_gold import raw_to_gold_sensor
from medallion_assets.orchestration.sensors.reference_files import reference_files_sensor

__all__ = ["KafkaSensorSettings", "kafka_offsets_sensor", "raw_to_gold_sensor", "reference_files_sensor"]
