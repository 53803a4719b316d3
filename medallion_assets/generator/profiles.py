"""Fixed listener profiles: name, gender, location, browser and registration time."""

from __future__ import annotations

import random
from typing import Any

from medallion_assets.generator.model import DAY_MS

# (city, state code, latitude, longitude, first zip code)
CITIES: tuple[tuple[str, str, float, float, int], ...] = (
    ("New York", "NY", 40.7128, -74.006, 10001), ("Los Angeles", "CA", 34.0522, -118.2437, 90001),
    ("Chicago", "IL", 41.8781, -87.6298, 60601), ("Houston", "TX", 29.7604, -95.3698, 77001),
    ("Phoenix", "AZ", 33.4484, -112.074, 85001), ("Philadelphia", "PA", 39.9526, -75.1652, 19102),
    ("San Antonio", "TX", 29.4241, -98.4936, 78201), ("San Diego", "CA", 32.7157, -117.1611, 92101),
    ("Dallas", "TX", 32.7767, -96.797, 75201), ("San Jose", "CA", 37.3382, -121.8863, 95110),
    ("Austin", "TX", 30.2672, -97.7431, 78701), ("Jacksonville", "FL", 30.3322, -81.6557, 32202),
    ("Columbus", "OH", 39.9612, -82.9988, 43215), ("Charlotte", "NC", 35.2271, -80.8431, 28202),
    ("Indianapolis", "IN", 39.7684, -86.1581, 46204), ("Seattle", "WA", 47.6062, -122.3321, 98101),
    ("Denver", "CO", 39.7392, -104.9903, 80202), ("Washington", "DC", 38.9072, -77.0369, 20001),
    ("Boston", "MA", 42.3601, -71.0589, 2108), ("Nashville", "TN", 36.1627, -86.7816, 37201),
    ("Detroit", "MI", 42.3314, -83.0458, 48201), ("Portland", "OR", 45.5152, -122.6784, 97201),
    ("Las Vegas", "NV", 36.1699, -115.1398, 89101), ("Louisville", "KY", 38.2527, -85.7585, 40202),
    ("Baltimore", "MD", 39.2904, -76.6122, 21201), ("Milwaukee", "WI", 43.0389, -87.9065, 53202),
    ("Albuquerque", "NM", 35.0844, -106.6504, 87102), ("Kansas City", "MO", 39.0997, -94.5786, 64105),
    ("Atlanta", "GA", 33.749, -84.388, 30303), ("Omaha", "NE", 41.2565, -95.9345, 68102),
    ("Minneapolis", "MN", 44.9778, -93.265, 55401), ("New Orleans", "LA", 29.9511, -90.0715, 70112),
    ("Oklahoma City", "OK", 35.4676, -97.5164, 73102), ("Salt Lake City", "UT", 40.7608, -111.891, 84101),
    ("Birmingham", "AL", 33.5186, -86.8104, 35203), ("Little Rock", "AR", 34.7465, -92.2896, 72201),
    ("Des Moines", "IA", 41.5868, -93.625, 50309), ("Boise", "ID", 43.615, -116.2023, 83702),
    ("Wichita", "KS", 37.6872, -97.3301, 67202), ("Portland", "ME", 43.6591, -70.2568, 4101),
    ("Jackson", "MS", 32.2988, -90.1848, 39201), ("Billings", "MT", 45.7833, -108.5007, 59101),
    ("Fargo", "ND", 46.8772, -96.7898, 58102), ("Manchester", "NH", 42.9956, -71.4548, 3101),
    ("Newark", "NJ", 40.7357, -74.1724, 7102), ("Providence", "RI", 41.824, -71.4128, 2903),
    ("Charleston", "SC", 32.7765, -79.9311, 29401), ("Sioux Falls", "SD", 43.5446, -96.7311, 57104),
    ("Virginia Beach", "VA", 36.8529, -75.978, 23451), ("Burlington", "VT", 44.4759, -73.2121, 5401),
    ("Charleston", "WV", 38.3498, -81.6326, 25301), ("Cheyenne", "WY", 41.14, -104.8202, 82001),
    ("Anchorage", "AK", 61.2181, -149.9003, 99501), ("Honolulu", "HI", 21.3069, -157.8583, 96813),
    ("Hartford", "CT", 41.7658, -72.6734, 6103), ("Wilmington", "DE", 39.7391, -75.5398, 19801),
    ("Miami", "FL", 25.7617, -80.1918, 33101), ("Buffalo", "NY", 42.8864, -78.8784, 14202),
    ("Pittsburgh", "PA", 40.4406, -79.9959, 15222), ("St. Louis", "MO", 38.627, -90.1994, 63101),
    ("San Juan", "PR", 18.4655, -66.1057, 901), ("Hagåtña", "GU", 13.4757, 144.7489, 96910),
)
# Share of listeners whose state code is not a real one (a join miss downstream).
UNKNOWN_STATE_SHARE = 0.005
UNKNOWN_STATE = "XX"

FEMALE_NAMES = (
    "Emma", "Olivia", "Ava", "Sophia", "Isabella", "Mia", "Amelia", "Harper", "Evelyn", "Abigail",
    "Emily", "Elizabeth", "Sofia", "Avery", "Ella", "Scarlett", "Grace", "Chloe", "Lily", "Aria",
    "Zoë", "Renée", "Chloé", "Mónica", "Léa", "Jasmine", "Kayla", "Brianna", "Destiny", "Alexis",
)
MALE_NAMES = (
    "Liam", "Noah", "William", "James", "Oliver", "Benjamin", "Elijah", "Lucas", "Mason", "Logan",
    "Alexander", "Ethan", "Jacob", "Michael", "Daniel", "Henry", "Jackson", "Sebastian", "Aiden",
    "Matthew", "José", "Andrés", "Joël", "Tyler", "Brandon", "Jordan", "Kevin", "Cody", "Dylan", "Ryan",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen",
    "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
    "O'Brien", "Núñez", "Peña",
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
)
MAX_ACCOUNT_AGE_MS = 730 * DAY_MS


def location(rng: random.Random) -> dict[str, Any]:
    """City, zip, state, lat, lon and browser of a visitor, jittered around a city centre."""
    city, state, lat, lon, first_zip = rng.choice(CITIES)
    if rng.random() < UNKNOWN_STATE_SHARE:
        state = UNKNOWN_STATE
    return {
        "city": city,
        "zip": f"{first_zip + rng.randrange(40):05d}",
        "state": state,
        "lat": round(lat + rng.uniform(-0.15, 0.15), 4),
        "lon": round(lon + rng.uniform(-0.15, 0.15), 4),
        "userAgent": rng.choice(USER_AGENTS),
    }


def user_profile(rng: random.Random, window_start_ms: int) -> dict[str, Any]:
    """The event fields of a registered listener, who registered before the window."""
    gender = rng.choice(("F", "M"))
    return {
        "firstName": rng.choice(FEMALE_NAMES if gender == "F" else MALE_NAMES),
        "lastName": rng.choice(LAST_NAMES),
        "gender": gender,
        "registration": window_start_ms - rng.randrange(60_000, MAX_ACCOUNT_AGE_MS),
        **location(rng),
    }


def guest_profile(rng: random.Random) -> dict[str, Any]:
    """The event fields of an anonymous visitor: location and browser, no personal details."""
    return {"firstName": None, "lastName": None, "gender": None, "registration": None, **location(rng)}
