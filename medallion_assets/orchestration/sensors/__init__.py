"""Sensors: Kafka lag -> ingestion, and raw materializations -> bronze, silver and gold."""

from medallion_assets.orchestration.sensors.kafka_offsets import KafkaSensorSettings, kafka_offsets_sensor
from medallion_assets.orchestration.sensors.raw_to_gold import raw_to_gold_sensor

__all__ = ["KafkaSensorSettings", "kafka_offsets_sensor", "raw_to_gold_sensor"]
