"""Write the reference files data/state_codes.csv and data/songs.csv (seeded, deterministic).

songs.csv mimics the Million Song Dataset subset: its columns, id formats and its mess
(quoted and accented artist names, "feat." credits, repeated titles, missing locations,
year 0 for unknown, empty hotness).

Usage: python scripts/make_reference_data.py [--seed N] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import random
import string
from collections.abc import Callable, Iterator
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SONG_COUNT = 10_000
ARTIST_COUNT = 3_000
REPEATED_TITLE_CASES = 20

SONG_COLUMNS = (
    "artist_id", "artist_latitude", "artist_location", "artist_longitude", "artist_name",
    "danceability", "duration", "energy", "key", "key_confidence", "loudness", "mode",
    "mode_confidence", "release", "song_hotttnesss", "song_id", "tempo", "title", "track_id", "year",
)

STATES = {
    "AK": "Alaska", "AL": "Alabama", "AR": "Arkansas", "AZ": "Arizona", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "IA": "Iowa", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "MA": "Massachusetts", "MD": "Maryland", "ME": "Maine",
    "MI": "Michigan", "MN": "Minnesota", "MO": "Missouri", "MS": "Mississippi", "MT": "Montana",
    "NC": "North Carolina", "ND": "North Dakota", "NE": "Nebraska", "NH": "New Hampshire",
    "NJ": "New Jersey", "NM": "New Mexico", "NV": "Nevada", "NY": "New York", "OH": "Ohio",
    "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island",
    "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah",
    "VA": "Virginia", "VT": "Vermont", "WA": "Washington", "WI": "Wisconsin", "WV": "West Virginia",
    "WY": "Wyoming",
}
OTHER_STATE_CODES = {
    "DC": "District of Columbia", "PR": "Puerto Rico", "GU": "Guam", "VI": "U.S. Virgin Islands",
    "AS": "American Samoa", "MP": "Northern Mariana Islands",
    "UM": "United States Minor Outlying Islands", "AA": "Armed Forces Americas",
    "AE": "Armed Forces Europe", "AP": "Armed Forces Pacific",
}

# (location text, latitude, longitude) of artist home towns, written the way MSD spells them.
ARTIST_PLACES = (
    ("New York, NY", 40.71455, -74.00712), ("Los Angeles, CA", 34.05349, -118.24532),
    ("Chicago, IL", 41.88415, -87.63241), ("Detroit, MI", 42.33168, -83.04792),
    ("Nashville, TN", 36.16778, -86.77836), ("Atlanta, GA", 33.74831, -84.39111),
    ("Seattle, WA", 47.60356, -122.32944), ("Austin, TX", 30.26759, -97.74299),
    ("New Orleans, LA", 29.95369, -90.07771), ("Memphis, TN", 35.14968, -90.04892),
    ("Minneapolis, MN", 44.97903, -93.26493), ("Boston, MA", 42.35888, -71.05682),
    ("Philadelphia, PA", 39.95227, -75.16237), ("San Francisco, CA", 37.77916, -122.42005),
    ("Houston, TX", 29.76045, -95.36978), ("Brooklyn, NY", 40.65507, -73.94888),
    ("Compton, CA", 33.89565, -118.22008), ("Athens, GA", 33.95977, -83.37713),
    ("London, England", 51.50632, -0.12714), ("Manchester, England", 53.47966, -2.24881),
    ("Liverpool, England", 53.41078, -2.97784), ("Glasgow, Scotland", 55.85711, -4.24315),
    ("Dublin, Ireland", 53.34376, -6.24953), ("Paris, France", 48.85693, 2.3412),
    ("Berlin, Germany", 52.51607, 13.37698), ("Stockholm, Sweden", 59.33217, 18.06243),
    ("Reykjavík, Iceland", 64.13548, -21.89541), ("Montréal, Québec, Canada", 45.51228, -73.55439),
    ("Toronto, Ontario, Canada", 43.64856, -79.38533), ("Kingston, Jamaica", 17.99702, -76.79358),
    ("São Paulo, Brazil", -23.56287, -46.65468), ("Ciudad de México, México", 19.43195, -99.13315),
    ("Sydney, Australia", -33.86963, 151.20695), ("Tokyo, Japan", 35.68536, 139.75309),
    ("Lagos, Nigeria", 6.4549, 3.43245), ("Helsinki, Finland", 60.17116, 24.93258),
    ("Bristol, England", 51.45301, -2.59155), ("Oslo, Norway", 59.91228, 10.74998),
    ("Madrid, Spain", 40.4203, -3.70577), ("Köln, Germany", 50.94168, 6.95517),
)
# Locations that MSD knows only as text, without coordinates.
VAGUE_PLACES = (
    "California - LA", "NY - Long Island", "Texas", "UK", "England", "Jamaica", "Sweden",
    "Canada", "Germany", "Bay Area, CA", "Southern California", "New Jersey", "Florida",
    "Washington DC", "Mississippi Delta", "Brooklyn, NY [Bedford-Stuyvesant]", "Ohio",
)

FIRST_NAMES = (
    "John", "Mary", "James", "Patricia", "Robert", "Linda", "Michael", "Barbara", "David",
    "Elizabeth", "Willie", "Jennifer", "Charles", "Maria", "Joseph", "Susan", "Thomas", "Nina",
    "Johnny", "Aretha", "Bobby", "Etta", "Sam", "Billie", "Otis", "Dolly", "Marvin", "Patsy",
    "José", "Björn", "Zoë", "Søren", "Anaïs", "Renée", "François", "Chloé", "Jürgen", "Agnès",
    "Éric", "Mónica", "Joël", "Léa", "Andrés", "Sinéad", "Håkan", "Ólafur", "Miloš", "Zaïre",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Moore",
    "Taylor", "Anderson", "Jackson", "White", "Harris", "Martin", "Thompson", "Garcia", "Clark",
    "Lewis", "Walker", "Young", "King", "Wright", "Hill", "Green", "Baker", "Nelson", "Carter",
    "Mitchell", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards",
    "Müller", "Gómez", "Núñez", "Jönsson", "Dvořák", "Lefèvre", "Ångström", "Brontë", "Peña",
    "Sigurðsson", "Ó Briain", "Çelik", "Østergaard", "Šimek",
)
NICKNAMES = ("The Hammer", "Big Daddy", "Slim", "Killer", "Ice", "Doc", "Sugar", "Blind", "Weird", "Smokey")
ADJECTIVES = (
    "Black", "Electric", "Silver", "Velvet", "Broken", "Wild", "Golden", "Lonely", "Crimson",
    "Burning", "Midnight", "Neon", "Holy", "Sonic", "Frozen", "Savage", "Blue", "Crystal",
    "Lost", "Atomic", "Sweet", "Dead", "Little", "Mighty", "Stone", "Cosmic", "Rusty", "Wicked",
    "Hollow", "Purple", "Flying", "Secret", "Radio", "Strange", "Happy", "Bitter", "Dirty",
)
NOUNS = (
    "Heart", "Night", "Fire", "River", "Dream", "Road", "Rain", "Moon", "Star", "Train",
    "Highway", "Angel", "Ghost", "Shadow", "Sun", "Ocean", "Window", "Mirror",
    "Lover", "Wolf", "Bird", "Rose", "Summer", "Winter", "Machine", "Garden", "Kingdom", "Soul",
    "Thunder", "Girl", "Boy", "Song", "Diamond", "Horse", "Dog", "Island", "Echo", "Hand",
    "Door", "Light", "Storm", "Letter", "Tiger", "Flower", "Pilot", "Saint", "Sailor",
)
VERBS = (
    "Love", "Hold", "Dance", "Kiss", "Run", "Cry", "Call", "Break", "Take", "Leave", "Save",
    "Tell", "Find", "Shake", "Stay", "Forget", "Remember", "Touch", "Burn", "Move", "Wait",
)
FOREIGN_WORDS = ("Corazón", "Déjà Vu", "Mañana", "Façade", "Café", "Fiancée", "Über", "Señorita", "Naïve", "Rêve")
STAGE_PREFIXES = ("DJ", "MC", "Lil'", "Big", "Young")
BAND_SUFFIXES = ("Band", "Orchestra", "Trio", "Quartet", "Experience", "Collective", "Project", "Allstars")
TITLE_SUFFIXES = (" (Live)", " (Remix)", " [Album Version]", " (Acoustic)", " - Single Version", " (Demo)", " Part 2")


def random_id(rng: random.Random, prefix: str, seen: set[str]) -> str:
    """An MSD-like identifier: prefix plus 16 uppercase alphanumerics, unique within `seen`."""
    alphabet = string.ascii_uppercase + string.digits
    while True:
        candidate = prefix + "".join(rng.choices(alphabet, k=16))
        if candidate not in seen:
            seen.add(candidate)
            return candidate


def person_name(rng: random.Random) -> str:
    """A first and last name, sometimes with a nickname in double quotes."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    if rng.random() < 0.08:
        return f'{first} "{rng.choice(NICKNAMES)}" {last}'
    return f"{first} {last}"


def band_name(rng: random.Random) -> str:
    """A band name in one of the usual shapes."""
    shapes: tuple[Callable[[], str], ...] = (
        lambda: f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}s",
        lambda: f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
        lambda: f"{rng.choice(NOUNS)} {rng.choice(BAND_SUFFIXES)}",
        lambda: f"{person_name(rng)} & The {rng.choice(NOUNS)}s",
        lambda: f"{rng.choice(STAGE_PREFIXES)} {rng.choice(NOUNS)}",
        lambda: f"{rng.choice(NOUNS)}\\{rng.choice(NOUNS)}",
        lambda: rng.choice(FOREIGN_WORDS),
        lambda: f'"{rng.choice(ADJECTIVES)}" {rng.choice(NOUNS)}',
    )
    return rng.choices(shapes, weights=(30, 25, 10, 8, 10, 2, 3, 2))[0]()


def artist_names(rng: random.Random, count: int) -> list[str]:
    """`count` distinct artist names; a few are 'feat.' credits combining two others."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        if len(names) > 1 and rng.random() < 0.04:
            lead, guest = rng.sample(names, 2)
            name = f"{lead} {rng.choice(('feat.', 'Feat.', 'featuring'))} {guest}"
        else:
            name = person_name(rng) if rng.random() < 0.45 else band_name(rng)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def song_title(rng: random.Random) -> str:
    """A song title in one of the usual shapes."""
    shapes: tuple[Callable[[], str], ...] = (
        lambda: f"{rng.choice(VERBS)} Me {rng.choice(('Tonight', 'Now', 'Again', 'Baby', 'Slowly'))}",
        lambda: f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
        lambda: f"{rng.choice(NOUNS)} Of The {rng.choice(NOUNS)}",
        lambda: f"Don't {rng.choice(VERBS)} My {rng.choice(NOUNS)}",
        lambda: rng.choice(NOUNS),
        lambda: f"{rng.choice(FOREIGN_WORDS)} {rng.choice(NOUNS)}",
        lambda: f'The "{rng.choice(ADJECTIVES)}" {rng.choice(NOUNS)}',
    )
    title = rng.choices(shapes, weights=(15, 30, 15, 10, 15, 5, 2))[0]()
    return title + rng.choice(TITLE_SUFFIXES) if rng.random() < 0.12 else title


def release_name(rng: random.Random) -> str:
    """An album name."""
    if rng.random() < 0.15:
        return rng.choice(("Greatest Hits", "Live At The BBC", "The Best Of", "Unplugged", "Anthology"))
    return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}s" if rng.random() < 0.5 else song_title(rng)


def fmt(value: float, digits: int) -> str:
    """A float with at most `digits` decimals."""
    return f"{round(value, digits)!r}"


def artist_row_part(rng: random.Random, name: str, seen_ids: set[str]) -> dict[str, str]:
    """The artist columns of an artist: id, name, and location with or without coordinates."""
    row = {"artist_id": random_id(rng, "AR", seen_ids), "artist_name": name,
           "artist_location": "", "artist_latitude": "", "artist_longitude": ""}
    draw = rng.random()
    if draw < 0.4:
        place, lat, lon = rng.choice(ARTIST_PLACES)
        row.update(artist_location=place, artist_latitude=fmt(lat, 5), artist_longitude=fmt(lon, 5))
    elif draw < 0.55:
        row["artist_location"] = rng.choice(VAGUE_PLACES)
    return row


def song_row(rng: random.Random, artist: dict[str, str], seen_ids: set[str]) -> dict[str, str]:
    """One song of an artist with MSD-like audio features."""
    hotness = "" if rng.random() < 0.15 else fmt(rng.betavariate(2.2, 3.0), 6)
    year = 0 if rng.random() < 0.35 else min(2010, int(rng.triangular(1950, 2011, 2006)))
    return {
        **artist,
        "danceability": fmt(rng.betavariate(5, 4), 3),
        "duration": fmt(min(1500.0, max(30.0, rng.lognormvariate(5.4, 0.35))), 5),
        "energy": fmt(rng.betavariate(4, 3), 3),
        "key": str(rng.randrange(12)),
        "key_confidence": fmt(rng.random(), 3),
        "loudness": fmt(-rng.gammavariate(2.5, 3.5), 3),
        "mode": str(int(rng.random() < 0.68)),
        "mode_confidence": fmt(rng.random(), 3),
        "release": release_name(rng),
        "song_hotttnesss": hotness,
        "song_id": random_id(rng, "SO", seen_ids),
        "tempo": fmt(rng.gauss(122, 28) % 240 + 40, 3),
        "title": song_title(rng),
        "track_id": random_id(rng, "TR", seen_ids),
        "year": str(year),
    }


def song_rows(rng: random.Random) -> list[dict[str, str]]:
    """All songs: every artist has one, the rest go to artists by a long-tailed popularity."""
    seen_ids: set[str] = set()
    artists = [artist_row_part(rng, name, seen_ids) for name in artist_names(rng, ARTIST_COUNT)]
    weights = [rng.paretovariate(1.3) for _ in artists]
    owners = artists + rng.choices(artists, weights=weights, k=SONG_COUNT - len(artists))
    rows = [song_row(rng, artist, seen_ids) for artist in owners]
    repeat_titles(rng, rows)
    rng.shuffle(rows)
    return rows


def repeat_titles(rng: random.Random, rows: list[dict[str, str]]) -> None:
    """Give a second song of some artists the title of their first (re-releases, live takes)."""
    by_artist: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_artist.setdefault(row["artist_id"], []).append(row)
    prolific = [songs for songs in by_artist.values() if len(songs) > 1]
    for first, second in (rng.sample(songs, 2) for songs in rng.sample(prolific, REPEATED_TITLE_CASES)):
        second["title"] = first["title"]


def state_rows() -> Iterator[tuple[str, str]]:
    """(code, name) of the states, DC, territories and military codes, by code."""
    yield from sorted({**STATES, **OTHER_STATE_CODES}.items())


def write_csv(path: Path, header: tuple[str, ...], rows: Iterator[tuple[str, ...]]) -> None:
    """Write a CSV file with minimal quoting and '\\n' line ends."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    """Write both reference files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(args.out_dir / "state_codes.csv", ("stateCode", "stateName"), state_rows())
    rows = song_rows(random.Random(args.seed))
    write_csv(args.out_dir / "songs.csv", SONG_COLUMNS, (tuple(r[c] for c in SONG_COLUMNS) for r in rows))


if __name__ == "__main__":
    main()
