"""Daily event partitions, from the first day of data through the current UTC day."""

from dagster import DailyPartitionsDefinition

PARTITIONS_START_DATE = "2018-10-01"

daily_partitions = DailyPartitionsDefinition(
    start_date=PARTITIONS_START_DATE, end_offset=1, timezone="UTC"
)
