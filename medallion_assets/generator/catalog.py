"""The song catalogue (data/songs.csv) and popularity-weighted song draws."""

from __future__ import annotations

import csv
import itertools
import random
from bisect import bisect
from pathlib import Path
from typing import NamedTuple

from medallion_assets.generator.model import Dialect

# Draw weight of a song without song_hotttnesss, and the floor that keeps cold songs playable.
UNKNOWN_HOTNESS = 0.2
MIN_WEIGHT = 0.01


class Song(NamedTuple):
    """A playable song: artist and title exactly as in the CSV, duration in seconds and on the wire."""

    artist: str
    title: str
    seconds: float
    duration: float | int


def _weight(hotness: str) -> float:
    """Draw weight from a song_hotttnesss field (may be empty)."""
    return MIN_WEIGHT + (float(hotness) if hotness else UNKNOWN_HOTNESS)


class SongCatalog:
    """Songs with cumulative popularity weights."""

    def __init__(self, songs: list[Song], weights: list[float]) -> None:
        """Catalogue of `songs` drawn with probability proportional to `weights`."""
        if not songs:
            raise ValueError("the song catalogue is empty")
        self.songs = songs
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> Song:
        """A song drawn by popularity."""
        return self.songs[bisect(self._cumulative, rng.random() * self._total)]


def load_songs(path: Path, dialect: Dialect) -> SongCatalog:
    """Playable songs of songs.csv (rows with a positive duration), in file order."""
    songs: list[Song] = []
    weights: list[float] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            seconds = float(row["duration"] or 0)
            if seconds > 0:
                songs.append(Song(row["artist_name"], row["title"], seconds, dialect.duration(seconds)))
                weights.append(_weight(row["song_hotttnesss"]))
    return SongCatalog(songs, weights)
