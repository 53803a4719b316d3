"""Which runs and versions a rollback takes, from the tables' commits alone (no Delta table, no JVM)."""

import pytest

from medallion_assets.ops.rollback import RESTORE_ORDER, LoggedCommit, plan_tables
from medallion_assets.tables import DIM_SONGS, FACT_STREAM, RAW

pytestmark = pytest.mark.fast

LISTENS = RAW["listen_events"]
HOUR_MS = 3600 * 1000


def log(*commits: tuple) -> list[LoggedCommit]:
    """A table's commits: (version, run id, operation[, at_ms, retained_ms])."""
    return [LoggedCommit(*c) for c in commits]


def test_each_table_goes_back_to_the_version_before_the_runs_first_commit_downstream_first():
    commits = {
        LISTENS: log((0, "a", "WRITE"), (1, "b", "WRITE"), (2, "b", "WRITE")),
        FACT_STREAM: log((0, "a", "WRITE"), (1, "b", "MERGE")),
        DIM_SONGS: log((0, "b", "WRITE")),
    }
    runs, tables = plan_tables(commits, "b", cascade=False)
    assert runs == ["b"]
    assert [(t.table, t.before, t.latest, t.run_versions, t.later_runs) for t in tables] == [
        (FACT_STREAM, 0, 1, (1,), ()),
        (DIM_SONGS, None, 0, (0,), ()),  # created by the run: emptied
        (LISTENS, 0, 2, (1, 2), ()),
    ]
    assert [t.table for t in tables] == [t for t in RESTORE_ORDER if t in commits]


def test_a_later_run_refuses_unless_cascading_which_takes_it_and_the_runs_after_it():
    commits = {
        LISTENS: log((0, "a", "WRITE"), (1, "b", "WRITE"), (2, "c", "WRITE")),
        FACT_STREAM: log((0, "b", "WRITE"), (1, None, "OPTIMIZE"), (2, "c", "MERGE")),
        DIM_SONGS: log((0, "c", "WRITE"), (1, "d", "WRITE")),
    }
    _, refused = plan_tables(commits, "b", cascade=False)
    assert {t.table: t.later_runs for t in refused} == {LISTENS: ("c",), FACT_STREAM: ("c",)}  # OPTIMIZE does not count
    runs, cascaded = plan_tables(commits, "b", cascade=True)
    assert runs == ["b", "c", "d"]
    assert {t.table: (t.before, t.later_runs) for t in cascaded} == {LISTENS: (0, ()), FACT_STREAM: (None, ()), DIM_SONGS: (None, ())}


def test_a_table_vacuumed_beyond_the_runs_first_commit_is_refused_one_within_retention_is_not():
    week = 168 * HOUR_MS
    run = ((0, "a", "WRITE", 0), (1, "b", "WRITE", 10 * HOUR_MS))
    within = log(*run, (2, None, "VACUUM START", 100 * HOUR_MS, week), (3, None, "VACUUM END", 100 * HOUR_MS, week))
    beyond = log(*run, (2, None, "VACUUM START", 200 * HOUR_MS, week), (3, None, "VACUUM END", 200 * HOUR_MS, week))
    (_, (kept,)), (_, (gone,)) = plan_tables({LISTENS: within}, "b", False), plan_tables({LISTENS: beyond}, "b", False)
    assert not kept.vacuumed and gone.vacuumed and not gone.later_runs


def test_a_run_that_committed_nothing_has_no_table():
    assert plan_tables({LISTENS: log((0, "a", "WRITE"))}, "zzz", cascade=True) == (["zzz"], [])
