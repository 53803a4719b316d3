"""Data-quality expectations declared once, as data (DLT semantics: warn | drop | fail)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dagster import AssetCheckSeverity, AssetCheckSpec
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion_assets.schemas import TOPIC_EXTRA_FIELDS
from medallion_assets.tables import (
    BRONZE,
    DIM_ARTISTS,
    DIM_LOCATION,
    DIM_SONGS,
    DIM_USERS,
    Table,
)

Action = Literal["warn", "drop", "fail"]


@dataclass(frozen=True)
class Expectation:
    """A named SQL predicate that valid rows of a table satisfy."""

    table: Table
    name: str
    predicate: str
    action: Action

    @property
    def condition(self) -> Column:
        """The predicate as a Column; null counts as a violation."""
        return F.coalesce(F.expr(self.predicate), F.lit(False))

    @property
    def check_spec(self) -> AssetCheckSpec:
        """The Dagster asset check that reports this expectation."""
        return AssetCheckSpec(
            name=self.name,
            asset=self.table.asset_key,
            description=f"{self.action}: {self.predicate}",
            blocking=self.action == "fail",
        )

    @property
    def severity(self) -> AssetCheckSeverity:
        """ERROR for fail, WARN otherwise."""
        return AssetCheckSeverity.ERROR if self.action == "fail" else AssetCheckSeverity.WARN


def _bronze(topic: str) -> list[Expectation]:
    """The seed's bronze expectations, plus a sane duration where events carry one."""
    table = BRONZE[topic]
    rules = [
        Expectation(table, "valid_timestamp", "ts IS NOT NULL", "drop"),
        Expectation(table, "valid_user_id", "userId IS NOT NULL AND userId <> ''", "drop"),
    ]
    if "duration" in TOPIC_EXTRA_FIELDS[topic]:
        rules.append(Expectation(table, "valid_duration", "duration IS NULL OR duration BETWEEN 0 AND 86400", "drop"))
    return rules


EXPECTATIONS: tuple[Expectation, ...] = (
    *(rule for topic in BRONZE for rule in _bronze(topic)),
    Expectation(DIM_USERS, "valid_user_id", "userId IS NOT NULL", "fail"),
    Expectation(DIM_LOCATION, "valid_city", "city IS NOT NULL", "drop"),
    Expectation(DIM_LOCATION, "valid_state", "stateCode IS NOT NULL", "drop"),
    Expectation(DIM_SONGS, "valid_song_id", "songId IS NOT NULL", "drop"),
    Expectation(DIM_SONGS, "valid_title", "title IS NOT NULL", "drop"),
    Expectation(DIM_SONGS, "valid_duration", "duration IS NULL OR duration > 0", "fail"),
    Expectation(DIM_ARTISTS, "valid_artist_id", "artistId IS NOT NULL", "drop"),
    Expectation(DIM_ARTISTS, "valid_name", "name IS NOT NULL AND name <> ''", "drop"),
)


def expectations_for(table: Table, action: Action | None = None) -> tuple[Expectation, ...]:
    """A table's expectations in declaration order, optionally of one action."""
    return tuple(e for e in EXPECTATIONS if e.table == table and action in (None, e.action))


def first_violation(rules: Sequence[Expectation]) -> Column:
    """Name of the first rule a row violates, or null when it satisfies them all."""
    reason: Column = F.lit(None).cast("string")
    for rule in reversed(rules):
        reason = F.when(~rule.condition, F.lit(rule.name)).otherwise(reason)
    return reason


def drop_violations(df: DataFrame, table: Table) -> tuple[DataFrame, DataFrame]:
    """(rows kept, rows dropped with a `reject_reason`) under the table's drop expectations."""
    tagged = df.withColumn("reject_reason", first_violation(expectations_for(table, "drop")))
    return tagged.where(F.col("reject_reason").isNull()).drop("reject_reason"), tagged.where(
        F.col("reject_reason").isNotNull()
    )
