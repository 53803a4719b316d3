"""Deliberately bad events: a share of the stream altered in known ways, each tagged with its kind."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from medallion_assets.generator.model import DAY_MS, LISTEN_TOPIC, Dialect, Event, Record, to_json

Mutation = Callable[[dict[str, Any], random.Random, Dialect], bytes]

DEFECT_KINDS: tuple[str, ...] = (
    "invalid_json", "not_utf8", "wrong_type_ts", "wrong_type_user", "missing_ts", "missing_user",
    "empty_user", "negative_duration", "absurd_duration", "future_ts", "duplicate", "extra_fields",
    "huge_message",
)
USER_KINDS = frozenset({"wrong_type_user", "missing_user", "empty_user"})
HUGE_MESSAGE_BYTES = 1 << 20
HUGE_MESSAGES_PER_RUN = 5
HUGE_MESSAGE_WEIGHT = 0.1
PADDING_FIELD = "padding"
EXTRA_FIELDS = {"appVersion": "3.2.1", "experimentGroup": "B", "_debug": True, "schemaVersion": 2}
YEAR_2100_MS = 4_102_444_800_000
ABSURD_DURATION_S = 1e9
NOT_UTF8 = b"\xff\xfe\xc3("
WRONG_TS_TEXTS = ("yesterday", "now", "N/A", "")


def _invalid_json(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """Valid UTF-8 text that is not JSON: cut short, a Python repr, or a colon lost."""
    text = to_json(payload).decode()
    garbled = (
        text[: rng.randrange(len(text) // 2, len(text) - 1)],
        repr(payload),
        text.replace('":', '" ', 1),
    )
    return rng.choice(garbled).encode()


def _not_utf8(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """JSON whose city value holds bytes that are not UTF-8."""
    return to_json(payload).replace(b'"city":"', b'"city":"' + NOT_UTF8, 1)


def _wrong_type_ts(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """ts as text: a word or an ISO timestamp."""
    iso = datetime.fromtimestamp(payload["ts"] / 1000, timezone.utc).isoformat()
    payload["ts"] = rng.choice((*WRONG_TS_TEXTS, iso))
    return to_json(payload)


def _wrong_type_user(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """userId as a JSON object."""
    payload["userId"] = {"id": payload["userId"]}
    return to_json(payload)


def _missing_ts(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """No ts field."""
    del payload["ts"]
    return to_json(payload)


def _missing_user(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """A signed-in user's event without its userId field."""
    del payload["userId"]
    return to_json(payload)


def _empty_user(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """userId as the empty string."""
    payload["userId"] = ""
    return to_json(payload)


def _negative_duration(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """A song duration below zero."""
    payload["duration"] = -payload["duration"]
    return to_json(payload)


def _absurd_duration(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """A song duration of decades."""
    payload["duration"] = dialect.duration(ABSURD_DURATION_S * (1 + rng.random()))
    return to_json(payload)


def _future_ts(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """ts in the 22nd century."""
    payload["ts"] = YEAR_2100_MS + rng.randrange(36_500 * DAY_MS)
    return to_json(payload)


def _extra_fields(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """A valid event plus one or two fields the contract does not know."""
    for name in rng.sample(sorted(EXTRA_FIELDS), rng.randint(1, 2)):
        payload[name] = EXTRA_FIELDS[name]
    return to_json(payload)


def _huge_message(payload: dict[str, Any], rng: random.Random, dialect: Dialect) -> bytes:
    """A valid event padded past 1 MiB (compressible, so brokers with default limits accept it compressed)."""
    payload[PADDING_FIELD] = "x" * HUGE_MESSAGE_BYTES
    return to_json(payload)


MUTATIONS: dict[str, Mutation] = {
    "invalid_json": _invalid_json,
    "not_utf8": _not_utf8,
    "wrong_type_ts": _wrong_type_ts,
    "wrong_type_user": _wrong_type_user,
    "missing_ts": _missing_ts,
    "missing_user": _missing_user,
    "empty_user": _empty_user,
    "negative_duration": _negative_duration,
    "absurd_duration": _absurd_duration,
    "future_ts": _future_ts,
    "extra_fields": _extra_fields,
    "huge_message": _huge_message,
}


class DefectInjector:
    """Turns records into events, altering about `rate` of them (at most one defect each)."""

    def __init__(self, rate: float, seed: int, dialect: Dialect) -> None:
        """An injector with its own random stream, so the simulation itself is unchanged."""
        self.rate, self.dialect = rate, dialect
        self.rng = random.Random(f"{seed}:defects")
        self.huge_left = HUGE_MESSAGES_PER_RUN

    def _kind(self, topic: str, payload: dict[str, Any]) -> str:
        """A defect kind that fits this event, drawn evenly (huge messages rarely, and capped)."""
        kinds = [kind for kind in DEFECT_KINDS if self._fits(kind, topic, payload)]
        weights = [HUGE_MESSAGE_WEIGHT if kind == "huge_message" else 1.0 for kind in kinds]
        return self.rng.choices(kinds, weights)[0]

    def _fits(self, kind: str, topic: str, payload: dict[str, Any]) -> bool:
        """Whether `kind` can alter this event."""
        if kind in USER_KINDS:
            return "userId" in payload
        if kind == "negative_duration":
            return "duration" in payload
        if kind == "absurd_duration":
            return topic == LISTEN_TOPIC
        return kind != "huge_message" or self.huge_left > 0

    def _defective(self, topic: str, key: bytes | None, payload: dict[str, Any], prefixed: str) -> Iterator[Event]:
        """The events replacing one record: altered, or the original then its duplicate."""
        kind = self._kind(topic, payload)
        if kind == "duplicate":
            value = to_json(payload)
            yield Event(prefixed, key, value)
            yield Event(prefixed, key, value, kind)
            return
        if kind == "huge_message":
            self.huge_left -= 1
        yield Event(prefixed, key, MUTATIONS[kind](payload, self.rng, self.dialect), kind)

    def inject(self, records: Iterable[Record], topics: dict[str, str]) -> Iterator[Event]:
        """Events of `records` with defects injected; `topics` maps topic names to prefixed ones."""
        rng, rate = self.rng, self.rate
        for _, topic, key, payload in records:
            if rng.random() < rate:
                yield from self._defective(topic, key, payload, topics[topic])
            else:
                yield Event(topics[topic], key, to_json(payload))
