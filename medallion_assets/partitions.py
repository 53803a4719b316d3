"""Daily event partitions, from the first day of data through the current UTC day."""

from datetime import date

from dagster import DailyPartitionsDefinition

PARTITIONS_START_DATE = "2018-10-01"

daily_partitions = DailyPartitionsDefinition(
    start_date=PARTITIONS_START_DATE, end_offset=1, timezone="UTC"
)


def partition_bounds() -> tuple[date, date]:
    """First and last day that has a partition now."""
    keys = daily_partitions.get_partition_keys()
    return date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
