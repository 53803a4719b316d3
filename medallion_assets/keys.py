"""Surrogate keys, unknown members and the name cleaning that joins rely on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UNKNOWN = "Unknown"
OPEN_END_TS = "9999-12-31 00:00:00"


def md5_key(*columns: Column | str) -> Column:
    """md5 of the '|'-joined columns: the surrogate key convention of every dimension."""
    return F.md5(F.concat_ws("|", *columns))


def unknown_key() -> Column:
    """The key of every dimension's unknown member: md5('Unknown')."""
    return md5_key(F.lit(UNKNOWN))


def with_unknown_member(
    dim: DataFrame, key: str, texts: Sequence[str], nulls: Mapping[str, str] | None = None
) -> DataFrame:
    """The dimension plus its unknown member: key md5('Unknown'), 'Unknown' texts, typed nulls elsewhere."""
    unknown = dim.sparkSession.range(1).select(
        unknown_key().alias(key),
        *[F.lit(UNKNOWN).alias(c) for c in texts],
        *[F.lit(None).cast(dtype).alias(c) for c, dtype in (nulls or {}).items()],
    )
    return dim.unionByName(unknown)


def clean_artist_name(column: Column | str) -> Column:
    """Artist name with double quotes and backslashes removed (how songs and listens match)."""
    return F.regexp_replace(F.col(column) if isinstance(column, str) else column, r'["\\]', "")
