"""Freshness policies: when raw or a daily gold table is late enough that someone should look.

The daemon evaluates them and the UI shows each asset's state (pass, warn, fail).
"""

from __future__ import annotations

from datetime import timedelta

from dagster import FreshnessPolicy

from medallion_assets.tables import Table

# Raw takes every new Kafka record within a sensor interval or two; a quiet hour means ingestion
# stalled (or the stream stopped, which is as worth a look).
RAW_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=1), warn_window=timedelta(minutes=15))

# The daily schedule (00:30 UTC) rebuilds yesterday and today; by 02:00 a daily gold table must have
# been written since 00:30, or yesterday's final figures are missing.
DAILY_GOLD_FRESHNESS = FreshnessPolicy.cron(deadline_cron="0 2 * * *", lower_bound_delta=timedelta(minutes=90), timezone="UTC")


def freshness_policy(table: Table) -> FreshnessPolicy | None:
    """The policy of a table: raw by the hour, daily gold by the daily schedule, others none."""
    if table.layer == "raw":
        return RAW_FRESHNESS
    if table.layer == "gold" and table.partition_column:
        return DAILY_GOLD_FRESHNESS
    return None
