"""Surrogate keys, unknown members and the name cleaning that joins rely on."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

UNKNOWN = "Unknown"
OPEN_END_TS = "9999-12-31 00:00:00"


def md5_key(*columns: Column | str) -> Column:
    """md5 of the '|'-joined columns: the surrogate key convention of every dimension."""
    return F.md5(F.concat_ws("|", *columns))


def unknown_key() -> Column:
    """The key of every dimension's unknown member: md5('Unknown')."""
    return md5_key(F.lit(UNKNOWN))


def clean_artist_name(column: Column | str) -> Column:
    """Artist name with double quotes and backslashes removed (how songs and listens match)."""
    return F.regexp_replace(F.col(column) if isinstance(column, str) else column, r'["\\]', "")
