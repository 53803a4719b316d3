"""Music-streaming medallion pipeline: Kafka -> raw -> bronze -> silver -> gold on Spark and Delta."""

from medallion_assets.definitions import defs

__all__ = ["defs"]
