"""Data-quality expectations declared once, as data (DLT semantics: warn | drop | fail).

A `drop` rule removes the rows it rejects and tolerates a fraction of them (default 1%); above
that its check WARNs, naming the rule, the day and the fraction, so a source gone bad shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion_assets.quality.checks import Check, Outcome, sample
from medallion_assets.schemas import TOPIC_EXTRA_FIELDS
from medallion_assets.tables import BRONZE, DIM_ARTISTS, DIM_LOCATION, DIM_SONGS, DIM_USERS, Table

Action = Literal["warn", "drop", "fail"]
DEFAULT_DROP_TOLERANCE = 0.01


@dataclass(frozen=True)
class Expectation:
    """A named SQL predicate that valid rows of a table satisfy."""

    table: Table
    name: str
    predicate: str
    action: Action
    tolerance: float = DEFAULT_DROP_TOLERANCE  # drop rules only: the rejected fraction that still passes

    @property
    def condition(self) -> Column:
        """The predicate as a Column; null counts as a violation."""
        return F.coalesce(F.expr(self.predicate), F.lit(False))

    @property
    def check(self) -> Check:
        """The asset check reporting this expectation: blocking for fail, WARN otherwise."""
        return Check(
            self.table,
            self.name,
            f"{self.action}: {self.predicate}",
            blocking=self.action == "fail",
            tolerance=self.tolerance if self.action == "drop" else 0.0,
        )


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


def rule_outcomes(
    table: Table,
    kept: DataFrame,
    tally: Mapping[str | None, int],
    samples: Mapping[str, list] | None = None,
) -> dict[Expectation, Outcome]:
    """Every expectation of an undivided table: drops from the tally of reasons, warn/fail counted on kept rows."""
    total = sum(tally.values())
    checked = [e for e in expectations_for(table) if e.action != "drop"]
    violations = {}
    if checked:
        row = kept.agg(*[F.sum((~e.condition).cast("long")).alias(e.name) for e in checked]).collect()[0]
        violations = {e.name: int(row[e.name] or 0) for e in checked}
    outcomes = {}
    for rule in expectations_for(table):
        if rule.action == "drop":
            outcomes[rule] = Outcome(tally.get(rule.name, 0), total, (samples or {}).get(rule.name))
        else:
            failed = violations[rule.name]
            outcomes[rule] = Outcome(failed, total, sample(kept.where(~rule.condition)) if failed else None)
    return outcomes


def day_drop_outcomes(
    table: Table,
    tally: Mapping[tuple[date, str | None], int],
    days: Sequence[date],
    samples: Mapping[tuple[date, str], list] | None = None,
) -> dict[Expectation, dict[date, Outcome]]:
    """Per day, every drop rule of a daily table from a tally of (day, reject reason) -> rows."""
    totals = {day: sum(n for (d, _), n in tally.items() if d == day) for day in days}
    return {
        rule: {
            day: Outcome(tally.get((day, rule.name), 0), totals[day], (samples or {}).get((day, rule.name)))
            for day in days
        }
        for rule in expectations_for(table, "drop")
    }
