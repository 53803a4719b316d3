"""Eventsim-like music-service event generator feeding the four Kafka topics (optionally with defects)."""

from medallion_assets.generator.defects import DEFECT_KINDS
from medallion_assets.generator.model import DIALECTS, TOPICS, Event, GeneratorConfig
from medallion_assets.generator.report import GenerationReport
from medallion_assets.generator.simulator import generate
from medallion_assets.generator.sinks import KafkaWriteError, write_jsonl, write_kafka

__all__ = [
    "DEFECT_KINDS",
    "DIALECTS",
    "TOPICS",
    "Event",
    "GenerationReport",
    "GeneratorConfig",
    "KafkaWriteError",
    "generate",
    "write_jsonl",
    "write_kafka",
]
