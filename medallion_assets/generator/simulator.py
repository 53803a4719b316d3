"""Eventsim-like simulation: listeners' sessions walk a page state machine, merged in time order."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from bisect import bisect
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from medallion_assets.generator.catalog import SongCatalog, load_songs
from medallion_assets.generator.defects import DefectInjector
from medallion_assets.generator.model import (
    AUTH_TOPIC,
    DAY_MS,
    DIALECTS,
    LISTEN_TOPIC,
    PAGE_VIEW_TOPIC,
    STATUS_CHANGE_TOPIC,
    TOPICS,
    Dialect,
    Event,
    GeneratorConfig,
    Record,
    to_json,
)
from medallion_assets.generator.profiles import guest_profile, user_profile

HOUR_MS = 3_600_000
# Relative share of sessions starting in each UTC hour: quiet mornings, busy evenings.
HOUR_WEIGHTS = (
    3.0, 2.5, 2.0, 1.5, 1.0, 0.8, 0.7, 0.8, 1.0, 1.3, 1.6, 2.0,
    2.3, 2.5, 2.7, 3.0, 3.3, 3.8, 4.5, 5.0, 5.2, 5.0, 4.5, 3.8,
)
HOUR_CUMULATIVE = tuple(itertools.accumulate(HOUR_WEIGHTS))
SESSION_GAP_MS = 30 * 60_000
PAGE_DWELL_MS = (1_000, 20_000)
PAID_SHARE = 0.25
REMEMBERED_LOGIN = 0.8
LOGIN_SUCCESS = 0.9
GUEST_STREAMS_PER_USER = 0.1
GUEST_SESSIONS_PER_DAY = 2.0

SIGNED_IN = frozenset({"Logged In", "Cancelled"})
LOGGED_IN_PAGES = {
    "NextSong": 80.0, "Home": 4.0, "Thumbs Up": 5.0, "Thumbs Down": 1.0, "Add to Playlist": 2.5,
    "Add Friend": 1.5, "Settings": 0.6, "Help": 0.5, "About": 0.2, "Error": 0.1, "Logout": 1.2,
    "Cancel": 0.01,
}
LOGGED_OUT_PAGES = {"Home": 30.0, "Login": 60.0, "About": 4.0, "Help": 5.0, "Error": 1.0}
GUEST_PAGES = {"Home": 45.0, "About": 15.0, "Help": 15.0, "Register": 20.0, "Error": 2.0}
# page -> (the page that usually follows it, probability)
FOLLOW_UPS = {
    "Upgrade": ("Submit Upgrade", 0.5),
    "Downgrade": ("Submit Downgrade", 0.4),
    "Settings": ("Save Settings", 0.3),
    "Cancel": ("Cancellation Confirmation", 0.6),
}
HTTP = {
    "Login": ("PUT", 307), "Logout": ("PUT", 307), "Submit Upgrade": ("PUT", 307),
    "Submit Downgrade": ("PUT", 307), "Save Settings": ("PUT", 307), "Thumbs Up": ("PUT", 307),
    "Thumbs Down": ("PUT", 307), "Add Friend": ("PUT", 307), "Add to Playlist": ("PUT", 307),
    "Cancel": ("PUT", 307), "Error": ("GET", 404),
}
GET_OK = ("GET", 200)
LEVEL_CHANGES = {"Submit Upgrade": ("free", "paid", "upgrade"), "Submit Downgrade": ("paid", "free", "downgrade")}


class _PageChoice:
    """Weighted draw of the next page."""

    def __init__(self, weights: dict[str, float]) -> None:
        """Pages with relative weights."""
        self.pages = tuple(weights)
        self.cumulative = tuple(itertools.accumulate(weights.values()))

    def pick(self, rng: random.Random) -> str:
        """A page drawn by weight."""
        return self.pages[bisect(self.cumulative, rng.random() * self.cumulative[-1])]


# Page walk per state (level when logged in); the chance a session ends after each page.
NEXT_PAGE = {
    "free": _PageChoice({**LOGGED_IN_PAGES, "Roll Advert": 5.0, "Upgrade": 0.6}),
    "paid": _PageChoice({**LOGGED_IN_PAGES, "Downgrade": 0.35}),
    "Logged Out": _PageChoice(LOGGED_OUT_PAGES),
    "Guest": _PageChoice(GUEST_PAGES),
}
SESSION_END = {"free": 0.025, "paid": 0.025, "Logged Out": 0.15, "Guest": 0.25}


@dataclass(frozen=True)
class _World:
    """What every simulated visitor shares."""

    seed: int
    dialect: Dialect
    songs: SongCatalog
    start_ms: int
    end_ms: int
    session_ids: Iterator[int]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _session_starts(rng: random.Random, world: _World, per_day: float) -> list[int]:
    """Sorted session start times over the window (at least one), following the daily rhythm."""
    starts = []
    for day_ms in range(world.start_ms, world.end_ms, DAY_MS):
        hours = rng.choices(range(24), cum_weights=HOUR_CUMULATIVE, k=_poisson(rng, per_day))
        starts += [day_ms + hour * HOUR_MS + rng.randrange(HOUR_MS) for hour in hours]
    return sorted(starts) or [world.start_ms + rng.randrange(world.end_ms - world.start_ms)]


class _Visitor:
    """A registered listener (with userId) or an anonymous guest, and state kept across sessions."""

    def __init__(self, world: _World, rng: random.Random, profile: dict[str, Any], user_no: int | None) -> None:
        """A visitor with a fixed profile; `user_no` None makes a guest."""
        self.world, self.rng, self.profile = world, rng, profile
        self.user_id = None if user_no is None else world.dialect.ident(user_no)
        self.key = None if user_no is None else str(user_no).encode()
        self.level = "paid" if user_no is not None and rng.random() < PAID_SHARE else "free"
        self.cancelled = False

    def _record(self, topic: str, ts: int, session_id: int | str, item: int, auth: str, extra: dict[str, Any]) -> Record:
        """One event of this visitor; userId only when signed in."""
        if auth in SIGNED_IN:
            head = {"ts": ts, "sessionId": session_id, "userId": self.user_id, "auth": auth}
            key = self.key
        else:
            head = {"ts": ts, "sessionId": session_id, "auth": auth}
            key = None
        return ts, topic, key, {**head, "level": self.level, "itemInSession": item, **self.profile, **extra}

    def _opening_auth(self) -> str:
        """Auth state at the start of a session."""
        if self.user_id is None:
            return "Guest"
        return "Logged In" if self.rng.random() < REMEMBERED_LOGIN else "Logged Out"

    def _state(self, auth: str) -> str:
        """Key of NEXT_PAGE and SESSION_END: the level when logged in, else the auth state."""
        return self.level if auth == "Logged In" else auth

    def _next_page(self, page: str, auth: str) -> str:
        """The page after `page`: its usual follow-up, or a draw for the current state."""
        follow_up = FOLLOW_UPS.get(page)
        if follow_up is not None and self.rng.random() < follow_up[1]:
            return follow_up[0]
        return NEXT_PAGE[self._state(auth)].pick(self.rng)

    def _act(self, page: str, ts: int, session_id: int | str, item: int, auth: str) -> Generator[Record, None, str]:
        """Side events of a page (auth, status change); returns the auth state after it."""
        if page == "Login":
            success = self.rng.random() < LOGIN_SUCCESS
            auth = "Logged In" if success else "Logged Out"
            yield self._record(AUTH_TOPIC, ts, session_id, item, auth,
                               {"success": success, "method": "PUT", "status": 307 if success else 200})
        elif page == "Logout":
            auth = "Logged Out"
        elif page == "Cancellation Confirmation":
            self.cancelled = True
        elif page in LEVEL_CHANGES:
            previous, self.level, change = LEVEL_CHANGES[page]
            details = {"prevLevel": previous, "statusChangeType": change} if self.world.dialect.status_change_details else {}
            yield self._record(STATUS_CHANGE_TOPIC, ts, session_id, item, auth, {**details, "method": "PUT", "status": 307})
        return auth

    def session(self, start_ms: int) -> Generator[Record, None, int]:
        """Events of one session starting at `start_ms`; returns when the next event would have been."""
        rng, world = self.rng, self.world
        session_id = world.dialect.ident(next(world.session_ids))
        auth, page, ts, item = self._opening_auth(), "Home", start_ms, 0
        while True:
            if page == "NextSong":
                song = world.songs.pick(rng)
                music = {"artist": song.artist, "song": song.title, "duration": song.duration}
                yield self._record(PAGE_VIEW_TOPIC, ts, session_id, item, auth,
                                   {"page": page, "method": "PUT", "status": 200, **music})
                yield self._record(LISTEN_TOPIC, ts, session_id, item, auth, music)
                ts += int(song.seconds * 1000)
            else:
                method, status = HTTP.get(page, GET_OK)
                page_auth = "Cancelled" if page == "Cancellation Confirmation" else auth
                yield self._record(PAGE_VIEW_TOPIC, ts, session_id, item, page_auth,
                                   {"page": page, "method": method, "status": status})
                auth = yield from self._act(page, ts, session_id, item, auth)
                ts += rng.randint(*PAGE_DWELL_MS)
            item += 1
            if self.cancelled or ts >= world.end_ms or rng.random() < SESSION_END[self._state(auth)]:
                return ts
            page = self._next_page(page, auth)


def _listener_records(world: _World, user_no: int) -> Iterator[Record]:
    """All sessions of one registered listener, in time order, until the window ends or they cancel."""
    rng = random.Random(f"{world.seed}:user:{user_no}")
    listener = _Visitor(world, rng, user_profile(rng, world.start_ms), user_no)
    sessions_per_day = rng.lognormvariate(0.0, 0.5)
    cursor = world.start_ms
    for start in _session_starts(rng, world, sessions_per_day):
        if max(start, cursor) >= world.end_ms or listener.cancelled:
            return
        cursor = (yield from listener.session(max(start, cursor))) + SESSION_GAP_MS


def _guest_records(world: _World, stream: str) -> Iterator[Record]:
    """Sessions of anonymous visitors arriving one after another, in time order."""
    rng = random.Random(f"{world.seed}:guests:{stream}")
    cursor = world.start_ms
    for start in _session_starts(rng, world, GUEST_SESSIONS_PER_DAY):
        if max(start, cursor) >= world.end_ms:
            return
        guest = _Visitor(world, rng, guest_profile(rng), None)
        cursor = (yield from guest.session(max(start, cursor))) + rng.randrange(60_000)


def _cohort_records(world: _World, users: int, cohort: int) -> Iterator[Record]:
    """Events of `users` listeners (ids after earlier cohorts) and their guests, merged by ts."""
    first = cohort * users + 1
    streams = [_listener_records(world, user_no) for user_no in range(first, first + users)]
    guest_streams = max(1, round(users * GUEST_STREAMS_PER_USER))
    streams += [_guest_records(world, f"{cohort}:{n}") for n in range(guest_streams)]
    return heapq.merge(*streams, key=itemgetter(0))


def generate(config: GeneratorConfig) -> Iterator[Event]:
    """Events of the simulation; with max_events, further cohorts of new users until that many."""
    config = config.resolved()
    dialect = DIALECTS[config.dialect]
    world = _World(config.seed, dialect, load_songs(config.songs_csv, dialect), *config.window_ms(), itertools.count(1))
    cohorts = itertools.count() if config.max_events is not None else range(1)
    records = itertools.chain.from_iterable(_cohort_records(world, config.users, c) for c in cohorts)
    topics = {name: config.topic(name) for name in TOPICS}
    if config.defect_rate > 0:
        events = DefectInjector(config.defect_rate, config.seed, dialect).inject(records, topics)
    else:
        events = (Event(topics[topic], key, to_json(payload)) for _, topic, key, payload in records)
    return itertools.islice(events, config.max_events)
