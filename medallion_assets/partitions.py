"""Moved to medallion_assets.orchestration.partitions; re-exported for raw/parse.py and silver/assets.py."""
from medallion_assets.orchestration.partitions import contiguous_ranges, daily_partitions, partition_bounds, range_tags  # noqa: F401
