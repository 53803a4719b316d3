"""What a generator run wrote: events per topic, defects per kind and topic, the date range."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from medallion_assets.generator.defects import DEFECT_KINDS
from medallion_assets.generator.model import Event, GeneratorConfig


@dataclass
class GenerationReport:
    """Counts of written events, tallied one event at a time."""

    start_date: date | None = None
    end_date: date | None = None
    dialect: str | None = None
    seed: int | None = None
    events_per_topic: Counter[str] = field(default_factory=Counter)
    defects_per_kind: Counter[str] = field(default_factory=Counter)
    defects_per_kind_topic: Counter[tuple[str, str]] = field(default_factory=Counter)
    elapsed_seconds: float = 0.0

    @classmethod
    def for_config(cls, config: GeneratorConfig) -> GenerationReport:
        """An empty report carrying the config's date range, dialect and seed."""
        resolved = config.resolved()
        return cls(resolved.start_date, resolved.end_date, resolved.dialect, resolved.seed)

    def add(self, event: Event) -> None:
        """Count one written event."""
        self.events_per_topic[event.topic] += 1
        if event.defect is not None:
            self.defects_per_kind[event.defect] += 1
            self.defects_per_kind_topic[event.defect, event.topic] += 1

    @property
    def total_events(self) -> int:
        """Events written over all topics."""
        return sum(self.events_per_topic.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; every defect kind appears, with 0 when none was injected."""
        by_topic: dict[str, dict[str, int]] = {}
        for (kind, topic), count in sorted(self.defects_per_kind_topic.items()):
            by_topic.setdefault(kind, {})[topic] = count
        return {
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "end_date_exclusive": self.end_date.isoformat() if self.end_date else None,
            "dialect": self.dialect,
            "seed": self.seed,
            "total_events": self.total_events,
            "events_per_topic": dict(sorted(self.events_per_topic.items())),
            "total_defects": sum(self.defects_per_kind.values()),
            "defects_per_kind": {kind: self.defects_per_kind[kind] for kind in DEFECT_KINDS},
            "defects_per_kind_and_topic": by_topic,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "events_per_second": round(self.total_events / self.elapsed_seconds) if self.elapsed_seconds else None,
        }
