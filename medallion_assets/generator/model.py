"""Generator options, the emitted event and the two wire dialects."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

from medallion_assets.paths import DATA_DIR
# The topic names come from medallion_assets.topics; the simulator and defects import them from here.
from medallion_assets.topics import AUTH_EVENTS as AUTH_TOPIC
from medallion_assets.topics import LISTEN_EVENTS as LISTEN_TOPIC
from medallion_assets.topics import PAGE_VIEW_EVENTS as PAGE_VIEW_TOPIC
from medallion_assets.topics import STATUS_CHANGE_EVENTS as STATUS_CHANGE_TOPIC
from medallion_assets.topics import TOPICS, physical_topic

DAY_MS = 86_400_000

# What the simulation yields before encoding: (ts, topic without prefix, key, payload).
Record = tuple[int, str, bytes | None, dict[str, Any]]

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def to_json(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON of an event payload."""
    return _ENCODER.encode(payload).encode()


class Event(NamedTuple):
    """One Kafka record: topic (prefixed), key (userId bytes or None), JSON value bytes, injected defect."""

    topic: str
    key: bytes | None
    value: bytes
    defect: str | None = None


@dataclass(frozen=True)
class Dialect:
    """How a producer writes ids and durations on the wire."""

    name: str
    text_ids: bool
    duration_ms: bool
    status_change_details: bool

    def ident(self, number: int) -> int | str:
        """A userId or sessionId as this dialect writes it."""
        return str(number) if self.text_ids else number

    def duration(self, seconds: float) -> float | int:
        """A song duration as this dialect writes it."""
        return round(seconds * 1000) if self.duration_ms else seconds


# eventsim: numeric ids, float seconds. seed: text ids, integer milliseconds, detailed status changes.
DIALECTS: dict[str, Dialect] = {
    "eventsim": Dialect("eventsim", text_ids=False, duration_ms=False, status_change_details=False),
    "seed": Dialect("seed", text_ids=True, duration_ms=True, status_change_details=True),
}


@dataclass(frozen=True)
class GeneratorConfig:
    """What to simulate; equal configs (with a start_date) produce byte-identical events."""

    users: int = 100
    days: int = 3
    start_date: date | None = None
    dialect: str = "eventsim"
    seed: int = 42
    defect_rate: float = 0.0
    max_events: int | None = None
    songs_csv: Path = DATA_DIR / "songs.csv"
    topic_prefix: str = ""

    def __post_init__(self) -> None:
        """Reject options the simulation cannot honour."""
        if self.users < 1 or self.days < 1:
            raise ValueError("users and days must be at least 1")
        if self.dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {sorted(DIALECTS)}, not {self.dialect!r}")
        if not 0.0 <= self.defect_rate <= 1.0:
            raise ValueError("defect_rate must be within [0, 1]")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError("max_events must not be negative")

    def resolved(self) -> GeneratorConfig:
        """This config with start_date fixed (default: the window ends today, UTC)."""
        if self.start_date is not None:
            return self
        today = datetime.now(timezone.utc).date()
        return dataclasses.replace(self, start_date=today - timedelta(days=self.days - 1))

    @property
    def end_date(self) -> date:
        """The first day after the window."""
        return self.resolved().start_date + timedelta(days=self.days)

    def window_ms(self) -> tuple[int, int]:
        """[start, end) of the window in epoch milliseconds."""
        start = datetime.combine(self.resolved().start_date, datetime.min.time(), timezone.utc)
        start_ms = int(start.timestamp()) * 1000
        return start_ms, start_ms + self.days * DAY_MS

    def topic(self, name: str) -> str:
        """A topic name with the prefix (the config's own, even empty: the environment is not read)."""
        return physical_topic(name, self.topic_prefix)
