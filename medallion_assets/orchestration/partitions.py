"""Daily event partitions, from the first day of data through the current UTC day, and day ranges."""

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone

from dagster import DailyPartitionsDefinition, EnvVar

# The earliest Eventsim data known; a deployment that starts later sets MEDALLION_FIRST_DAY.
DEFAULT_FIRST_DAY = "2018-10-01"
FIRST_DAY_SETTING = "MEDALLION_FIRST_DAY"


def first_partition_day() -> str:
    """The first day partition (YYYY-MM-DD): env MEDALLION_FIRST_DAY, default 2018-10-01.

    Dagster fixes a partitions definition when the code location loads, so this one setting is read
    there (by the webserver, the daemon and every run alike), not by a resource.
    """
    value = EnvVar(FIRST_DAY_SETTING).get_value(default=DEFAULT_FIRST_DAY) or DEFAULT_FIRST_DAY
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{FIRST_DAY_SETTING}={value} is not a day (YYYY-MM-DD).") from None
    if day > datetime.now(timezone.utc).date():
        raise ValueError(f"{FIRST_DAY_SETTING}={value} is in the future: there would be no partition.")
    return day.isoformat()


PARTITIONS_START_DATE = first_partition_day()

# The run tags with which Dagster runs one run over a range of partitions (single-run backfills,
# `dagster asset materialize --partition-range`). The dagster package does not export them
# publicly, so they are spelled here; their values are part of Dagster's stored run format.
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"

daily_partitions = DailyPartitionsDefinition(
    start_date=PARTITIONS_START_DATE, end_offset=1, timezone="UTC"
)


def partition_bounds() -> tuple[date, date]:
    """First and last day that has a partition now (the last one is the current UTC day)."""
    first = daily_partitions.get_first_partition_key()
    last = daily_partitions.get_last_partition_key()
    assert first is not None and last is not None, "the daily partitions are never empty"
    return date.fromisoformat(first), date.fromisoformat(last)


def range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover the partitions first..last (single-run backfill)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}


def contiguous_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted (first, last) ranges of consecutive days."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def days_of_run(tags: Mapping[str, str]) -> list[date] | None:
    """The days a run covers, from its partition tags; None for a run over no day partition."""
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        first = date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG])
        last = date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG])
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if PARTITION_TAG in tags:
        return [date.fromisoformat(tags[PARTITION_TAG])]
    return None


# Metadata naming the days a materialization asks raw_to_gold_sensor to rebuild below raw.
EVENT_DATES = "event_dates"  # raw/<topic>: the days its records fall on
STALE_FACT_DAYS = "stale_fact_days"  # silver/dim_users: days whose fact rows carry the key of a replaced version
