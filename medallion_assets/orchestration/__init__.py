"""Orchestration of the asset graph: partitions, jobs, schedules, sensors and Delta maintenance."""
