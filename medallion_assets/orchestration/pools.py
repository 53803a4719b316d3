"""The concurrency pool of every step that writes below raw.

The instance configurations the project ships (medallion_assets/dev/conf/dagster.yaml, docker/dagster.yaml)
give each pool one slot and count it per run, so the queue launches one run that writes below raw at a
time: two runs never rewrite a dimension together, whatever job, sensor or UI action launched them.
"""

from medallion_assets.tables import Table

BELOW_RAW_POOL = "medallion_below_raw"


def pool_of(tables: list[Table]) -> str | None:
    """The pool of a step writing these tables: none for raw (ingestion only appends), the below-raw pool otherwise."""
    return BELOW_RAW_POOL if any(table.layer != "raw" for table in tables) else None
