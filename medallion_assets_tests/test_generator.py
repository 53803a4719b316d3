"""The event generator: determinism, wire dialects, session behaviour and defect accounting."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from medallion_assets.generator import (
    DEFECT_KINDS,
    Event,
    GenerationReport,
    GeneratorConfig,
    generate,
    write_jsonl,
)
from medallion_assets.generator.__main__ import main
from medallion_assets.paths import DATA_DIR

pytestmark = pytest.mark.fast

START = date(2024, 3, 1)
SIGNED_IN = {"Logged In", "Cancelled"}
YEAR_2100_MS = 4_102_444_800_000
ABSURD_SECONDS = 1e8
HUGE_BYTES = 1 << 20
COMMON_FIELDS = {
    "ts", "sessionId", "userId", "auth", "level", "itemInSession", "firstName", "lastName", "gender",
    "registration", "city", "zip", "state", "lat", "lon", "userAgent",
}
TOPIC_FIELDS = {
    "page_view_events": COMMON_FIELDS | {"page", "method", "status", "artist", "song", "duration"},
    "listen_events": COMMON_FIELDS | {"artist", "song", "duration"},
    "auth_events": COMMON_FIELDS | {"success", "method", "status"},
    "status_change_events": COMMON_FIELDS | {"prevLevel", "statusChangeType", "method", "status"},
}


def window_ms(config: GeneratorConfig) -> tuple[int, int]:
    """[start, end) of a config's days in epoch ms."""
    start = datetime.combine(config.start_date, datetime.min.time(), timezone.utc)
    end = start + timedelta(days=config.days)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def by_topic(events: list[Event]) -> dict[str, list[dict[str, Any]]]:
    """Decoded payloads per topic."""
    payloads: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        payloads[event.topic].append(json.loads(event.value))
    return payloads


def user_timelines(events: list[Event]) -> dict[Any, list[tuple[str, dict[str, Any]]]]:
    """(topic, payload) of each userId, in emitted order."""
    timelines: dict[Any, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for event in events:
        payload = json.loads(event.value)
        if "userId" in payload:
            timelines[payload["userId"]].append((event.topic, payload))
    return timelines


@pytest.fixture(scope="module")
def eventsim() -> list[Event]:
    """A defect-free eventsim run."""
    return list(generate(GeneratorConfig(users=40, days=3, start_date=START)))


@pytest.fixture(scope="module")
def seed_events() -> list[Event]:
    """A defect-free seed-dialect run."""
    return list(generate(GeneratorConfig(users=40, days=3, start_date=START, dialect="seed")))


@pytest.fixture(scope="module")
def long_run() -> list[Event]:
    """Two weeks of listeners, long enough for upgrades followed by downgrades."""
    return list(generate(GeneratorConfig(users=60, days=14, start_date=START, dialect="seed")))


def test_same_seed_gives_identical_bytes_and_other_seed_differs() -> None:
    config = GeneratorConfig(users=15, days=2, start_date=START, defect_rate=0.05)
    first = list(generate(config))
    assert first == list(generate(config))
    assert first != list(generate(GeneratorConfig(users=15, days=2, start_date=START, defect_rate=0.05, seed=43)))


def test_eventsim_dialect_types(eventsim: list[Event]) -> None:
    for event in eventsim:
        payload = json.loads(event.value)
        assert isinstance(payload["sessionId"], int)
        if payload["auth"] in SIGNED_IN:
            assert type(payload["userId"]) is int
            assert event.key == str(payload["userId"]).encode()
        else:
            assert "userId" not in payload and event.key is None
        if "duration" in payload:
            assert isinstance(payload["duration"], float) and payload["duration"] > 0
        assert "prevLevel" not in payload and "statusChangeType" not in payload
        assert set(payload) <= TOPIC_FIELDS[event.topic]
    assert {event.topic for event in eventsim} == set(TOPIC_FIELDS)


def test_seed_dialect_types(seed_events: list[Event]) -> None:
    for event in seed_events:
        payload = json.loads(event.value)
        assert isinstance(payload["sessionId"], str)
        if payload["auth"] in SIGNED_IN:
            assert isinstance(payload["userId"], str) and event.key == payload["userId"].encode()
        if "duration" in payload:
            assert type(payload["duration"]) is int and payload["duration"] > 1000
        if event.topic == "status_change_events":
            expected = {"free": ("paid", "upgrade"), "paid": ("free", "downgrade")}[payload["prevLevel"]]
            assert (payload["level"], payload["statusChangeType"]) == expected


def test_every_listen_matches_a_next_song_page_view(eventsim: list[Event]) -> None:
    payloads = by_topic(eventsim)
    song_views = [
        {k: v for k, v in view.items() if k not in ("page", "method", "status")}
        for view in payloads["page_view_events"]
        if view["page"] == "NextSong"
    ]
    canonical = Counter(json.dumps(p, sort_keys=True) for p in song_views)
    assert canonical == Counter(json.dumps(p, sort_keys=True) for p in payloads["listen_events"])
    assert all("artist" not in view for view in payloads["page_view_events"] if view["page"] != "NextSong")


def test_songs_come_from_the_catalogue_verbatim(eventsim: list[Event]) -> None:
    with (DATA_DIR / "songs.csv").open(newline="", encoding="utf-8") as handle:
        catalogue = {(row["artist_name"], row["title"]) for row in csv.DictReader(handle)}
    played = {(listen["artist"], listen["song"]) for listen in by_topic(eventsim)["listen_events"]}
    assert played <= catalogue
    assert any('"' in artist or "\\" in artist for artist, _ in played)


def test_status_changes_flip_the_level_of_later_events(long_run: list[Event]) -> None:
    changes = 0
    for timeline in user_timelines(long_run).values():
        level = None
        for topic, payload in timeline:
            if topic == "status_change_events":
                assert payload["prevLevel"] != payload["level"]
                assert level in (None, payload["prevLevel"])
                level, changed_at = payload["level"], payload["ts"]
                changes += 1
            elif level is not None and payload["ts"] > changed_at:
                assert payload["level"] == level
    assert changes > 0


def test_some_user_upgrades_then_downgrades(long_run: list[Event]) -> None:
    kinds_per_user = {
        user: {payload["statusChangeType"] for topic, payload in timeline if topic == "status_change_events"}
        for user, timeline in user_timelines(long_run).items()
    }
    assert any(kinds == {"upgrade", "downgrade"} for kinds in kinds_per_user.values())


def test_logins_emit_auth_events_with_both_outcomes(long_run: list[Event]) -> None:
    payloads = by_topic(long_run)
    logins = [view for view in payloads["page_view_events"] if view["page"] == "Login"]
    assert len(logins) == len(payloads["auth_events"]) > 0
    assert {auth["success"] for auth in payloads["auth_events"]} == {True, False}
    guests = [view for view in payloads["page_view_events"] if view["auth"] == "Guest"]
    assert guests and all("userId" not in view for view in guests)


def test_timestamps_in_window_and_ordered_per_user(eventsim: list[Event]) -> None:
    config = GeneratorConfig(users=40, days=3, start_date=START)
    start_ms, end_ms = window_ms(config)
    for timeline in user_timelines(eventsim).values():
        stamps = [payload["ts"] for _, payload in timeline]
        assert stamps == sorted(stamps)
        assert all(start_ms <= ts < end_ms for ts in stamps)
        assert all(payload["registration"] < stamps[0] for _, payload in timeline)
    assert all(start_ms <= json.loads(e.value)["ts"] < end_ms for e in eventsim)


def test_states_are_known_codes(eventsim: list[Event]) -> None:
    with (DATA_DIR / "state_codes.csv").open(newline="", encoding="utf-8") as handle:
        codes = {row["stateCode"] for row in csv.DictReader(handle)}
    assert {json.loads(e.value)["state"] for e in eventsim} <= codes | {"XX"}


def test_max_events_is_exact_even_beyond_one_cohort() -> None:
    # Far more events than 3 users make in a day, so the generator must bring in more users.
    config = GeneratorConfig(users=3, days=1, start_date=START, max_events=20_000, defect_rate=0.02)
    events = list(generate(config))
    assert len(events) == config.max_events
    user_ids = {json.loads(e.value).get("userId") for e in events if e.defect is None}
    assert len(user_ids - {None}) > config.users


def classify(line: bytes, topic: str, seen: set[bytes], duration_scale: float) -> str | None:
    """The defect kind a written line shows, or None for a valid event."""
    if line in seen:
        return "duplicate"
    seen.add(line)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    try:
        event = json.loads(text)
    except ValueError:
        return "invalid_json"
    if len(line) >= HUGE_BYTES:
        return "huge_message"
    if "ts" not in event:
        return "missing_ts"
    if isinstance(event["ts"], str):
        return "wrong_type_ts"
    if event["ts"] >= YEAR_2100_MS:
        return "future_ts"
    if "userId" not in event and event["auth"] in SIGNED_IN:
        return "missing_user"
    if isinstance(event.get("userId"), dict):
        return "wrong_type_user"
    if event.get("userId") == "":
        return "empty_user"
    if event.get("duration", 1) < 0:
        return "negative_duration"
    if event.get("duration", 1) * duration_scale > ABSURD_SECONDS:
        return "absurd_duration"
    if set(event) - TOPIC_FIELDS[topic]:
        return "extra_fields"
    return None


@pytest.mark.parametrize("dialect", ["eventsim", "seed"])
def test_reported_defects_are_found_in_the_output(dialect: str, tmp_path: Path) -> None:
    config = GeneratorConfig(users=100, days=3, start_date=START, dialect=dialect, defect_rate=0.08, topic_prefix="t_")
    report = write_jsonl(generate(config), tmp_path, GenerationReport.for_config(config))
    found: Counter[tuple[str, str]] = Counter()
    for path in sorted(tmp_path.glob("*.jsonl")):
        seen: set[bytes] = set()
        topic = path.stem.removeprefix("t_")
        for line in path.read_bytes().split(b"\n")[:-1]:
            kind = classify(line, topic, seen, 0.001 if dialect == "seed" else 1.0)
            if kind:
                found[kind, path.stem] += 1
    assert found == report.defects_per_kind_topic
    assert set(report.defects_per_kind) == set(DEFECT_KINDS)
    assert 1 <= report.defects_per_kind["huge_message"] <= 5
    totals = report.to_dict()
    assert totals["total_events"] == sum(1 for p in tmp_path.glob("*.jsonl") for _ in p.open("rb"))
    assert totals["start_date"] == "2024-03-01" and totals["end_date_exclusive"] == "2024-03-04"
    assert set(totals["events_per_topic"]) == {f"t_{topic}" for topic in TOPIC_FIELDS}


def test_cli_writes_files_and_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    max_events = 500
    argv = ["--users", "5", "--days", "1", "--start-date", "2024-03-01", "--max-events", str(max_events),
            "--output", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["total_events"] == max_events
    assert sum(1 for p in tmp_path.glob("*.jsonl") for _ in p.open("rb")) == max_events
    assert {p.stem for p in tmp_path.glob("*.jsonl")} <= set(TOPIC_FIELDS)  # one file per topic, no prefix


def test_default_window_ends_today() -> None:
    resolved = GeneratorConfig(days=3).resolved()
    assert resolved.end_date == datetime.now(timezone.utc).date() + timedelta(days=1)
