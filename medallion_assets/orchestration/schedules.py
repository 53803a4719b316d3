"""Schedules: the daily rebuild below raw, the weekly Delta maintenance, the hourly audit of the quality log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster import DefaultScheduleStatus, RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from medallion_assets.orchestration.jobs import downstream_job, quality_log_job
from medallion_assets.orchestration.maintenance import maintenance_job
from medallion_assets.orchestration.partitions import partition_bounds, range_tags


@schedule(
    job=downstream_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily at 00:30 UTC: dimensions, all-time gold, and yesterday's and today's daily partitions.",
)
def daily_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """One run of downstream_job over yesterday..today, keyed by the day."""
    scheduled = context.scheduled_execution_time or datetime.now(timezone.utc)
    today = scheduled.astimezone(timezone.utc).date()
    first_day, _ = partition_bounds()
    yesterday = max(today - timedelta(days=1), first_day)
    tags = {**range_tags(yesterday, today), "medallion/trigger": "daily_schedule"}
    return RunRequest(run_key=f"daily-{today.isoformat()}", tags=tags)


weekly_maintenance_schedule = ScheduleDefinition(
    name="weekly_maintenance_schedule",
    job=maintenance_job,
    cron_schedule="0 3 * * 0",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Sundays at 03:00 UTC: OPTIMIZE and VACUUM (168 h retention) of every Delta table.",
)


hourly_quality_log_schedule = ScheduleDefinition(
    name="hourly_quality_log_schedule",
    job=quality_log_job,
    cron_schedule="50 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly at :50: compact ops/quality_log and audit the last day's runs against the event log.",
)
