"""Checks and warehouse bookkeeping without a JVM: what each asset declares, and counts from the Delta log."""

from __future__ import annotations

import logging
from datetime import date

import pyarrow as pa
import pytest
from dagster import AssetCheckSeverity, BackfillPolicy, DagsterInstance, MaterializeResult, asset, materialize
from delta.exceptions import ProtocolChangedException
from deltalake import write_deltalake
from pyspark.errors.exceptions.connect import UnknownException

from medallion_assets.definitions import all_assets
from medallion_assets.quality.checks import Check, Outcome
from medallion_assets.quality.expectations import DEFAULT_DROP_TOLERANCE, EXPECTATIONS, expectations_for
from medallion_assets.orchestration.partitions import daily_partitions, range_tags
from medallion_assets.quality.integrity import WIDE_FACT_ROWS, count_mismatch, songs_accounting, total_mismatch
from medallion_assets.quality.schema import COLUMN_SCHEMA
from medallion_assets.resources.warehouse import WarehouseResource, retry_on_conflict
from medallion_assets.runtime import gate, table_asset
from medallion_assets.tables import ALL_TABLES, BRONZE, DAILY_USER_SUMMARY, DIM_USERS, FACT_STREAM, RAW, WIDE_FACT

pytestmark = pytest.mark.fast
D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)


def test_every_table_has_checks_and_every_expectation_is_declared_on_its_asset():
    declared = {(spec.asset_key, spec.name): spec for definition in all_assets for spec in definition.check_specs}
    for table in ALL_TABLES:
        assert any(key == table.asset_key for key, _ in declared), f"{table.path} has no check"
    for rule in EXPECTATIONS:
        spec = declared[(rule.table.asset_key, rule.name)]
        assert spec.blocking == (rule.action == "fail")


def test_checks_of_daily_tables_are_partitioned_like_their_asset():
    for definition in all_assets:
        for spec in definition.check_specs:
            assert spec.partitions_def == definition.partitions_def, spec.key


def test_a_drop_rule_passes_within_its_tolerance_and_warns_above_it():
    rule = next(e for e in expectations_for(BRONZE["listen_events"], "drop") if e.name == "valid_user_id")
    check = rule.check
    assert check.tolerance == DEFAULT_DROP_TOLERANCE == 0.01 and not check.blocking
    assert check.passed(Outcome(1, 100)) and not check.passed(Outcome(2, 100))
    (warning,) = check.day_results({D1: Outcome(5, 100)})
    assert not warning.passed and warning.severity == AssetCheckSeverity.WARN and warning.partition == D1.isoformat()
    assert warning.description == "5 of 100 rows fail valid_user_id on 2024-01-01 (5.0%, above the tolerated 1.0%)"
    assert warning.metadata["failed_fraction"].value == 0.05


def test_a_blocking_check_fails_as_an_error_on_any_failed_row():
    check = Check(FACT_STREAM, "no_null_keys", "no fact key is null")
    result = check.result(Outcome(1, 1000, [{"userKey": None}]))
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert result.metadata["sample"].value == [{"userKey": None}]


def test_count_mismatch_per_day_and_total():
    expected = {(D1, "a"): 3, (D2, "a"): 2}
    assert {d: o.failed for d, o in count_mismatch(expected, dict(expected), [D1, D2]).items()} == {D1: 0, D2: 0}
    short = count_mismatch(expected, {(D1, "a"): 1, (D1, "b"): 2}, [D1, D2])
    # D1: group a is 2 short and group b has 2 that nothing expected; D2: group a (2 rows) is missing
    assert (short[D1].failed, short[D1].total, short[D2].failed) == (4, 3, 2)
    assert short[D1].sample == [
        {"group": "a", "expected": 3, "actual": 1},
        {"group": "b", "expected": 0, "actual": 2},
    ]
    assert total_mismatch(5, 5).failed == 0 and total_mismatch(5, 3).failed == 2


def test_songs_accounting():
    assert songs_accounting(10, 1, 2, 1, 6).failed == 0
    assert songs_accounting(10, 1, 2, 1, 5).failed == 1


def test_row_counts_come_from_the_delta_log(tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    table = BRONZE["listen_events"]
    assert not warehouse.exists(table) and warehouse.total_rows(table) == 0
    rows = pa.table({"event_date": [D1, D1, D1, D2], "x": [1, 2, 3, 4]})
    write_deltalake(warehouse.uri(table), rows, partition_by=["event_date"])
    write_deltalake(warehouse.uri(table), pa.table({"event_date": [D2], "x": [5]}), partition_by=["event_date"], mode="append")
    assert warehouse.day_rows(table) == {D1: 3, D2: 2}
    assert warehouse.day_rows(table, [D2, D3]) == {D2: 2, D3: 0}  # a day without data counts 0
    assert warehouse.total_rows(table) == 5
    unchanged = warehouse.unchanged(table, [D1, D3])
    assert unchanged.version is None and unchanged.rows_written == 0 and unchanged.total_rows == 5
    assert unchanged.metadata()["delta_version"].value == "no commit"
    assert unchanged.day_metadata(D1) == {"dagster/partition_row_count": 3}
    assert unchanged.day_metadata(D3) == {"dagster/partition_row_count": 0}
    assert warehouse.day_rows(RAW["listen_events"], [D1]) == {D1: 0}  # a table never written holds nothing


@pytest.mark.fast
def test_a_write_that_meets_a_concurrent_commit_is_tried_again(monkeypatch):
    monkeypatch.setattr("medallion_assets.resources.warehouse.time.sleep", lambda _: None)
    calls = []

    def write():  # the first attempt loses the race to create the table, as two runs do
        calls.append(1)
        if len(calls) == 1:
            raise ProtocolChangedException(message="concurrent create")

    retry_on_conflict(DIM_USERS, write)
    assert len(calls) == 2

    def over_connect():  # the same conflict as a Spark Connect server reports it
        calls.append(1)
        if len(calls) == 3:
            raise UnknownException("[DELTA_PROTOCOL_CHANGED] concurrent create", reason="io.delta.exceptions.ProtocolChangedException")

    retry_on_conflict(DIM_USERS, over_connect)
    assert len(calls) == 4
    del calls[:]

    def broken():
        calls.append(1)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError):
        retry_on_conflict(DIM_USERS, broken)
    assert len(calls) == 1  # other errors are not retried


def wide_fact_and_summary(outcomes: dict[date, Outcome], summary_runs: bool) -> list:
    """A daily wide_fact reporting rows_match_fact with `outcomes` per day (through `gate`), and the daily
    summary that reads it (which fails the test if it runs when it must not)."""

    @table_asset(WIDE_FACT, checks=[WIDE_FACT_ROWS])
    def wide_fact(context):
        schema = COLUMN_SCHEMA[WIDE_FACT].day_results({d: Outcome(0, len(WIDE_FACT.columns)) for d in outcomes})
        yield from gate(context, [MaterializeResult(asset_key=WIDE_FACT.asset_key), *WIDE_FACT_ROWS.day_results(outcomes), *schema])

    @asset(
        key=DAILY_USER_SUMMARY.asset_key, deps=[WIDE_FACT.asset_key], partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
    )
    def summary() -> None:
        assert summary_runs, "must not run after a failed blocking check"

    return [wide_fact, summary]


def test_a_failed_blocking_check_of_one_day_stops_what_reads_the_table_in_that_run():
    """wide_fact's rows_match_fact fails on D2 of a D1..D2 run: the table is written and reported, its
    step fails naming the check and the day, and the summary that reads it does not run."""
    outcomes = {D1: Outcome(0, 10), D2: Outcome(3, 10)}
    assets = wide_fact_and_summary(outcomes, summary_runs=False)
    result = materialize(assets, instance=DagsterInstance.ephemeral(), tags=range_tags(D1, D2), raise_on_error=False)
    assert not result.success
    assert [(e.partition, e.passed) for e in result.get_asset_check_evaluations() if e.check_name == "rows_match_fact"] == [
        ("2024-01-01", True), ("2024-01-02", False)
    ]
    assert {(m.asset_key, m.partition) for m in result.get_asset_materialization_events()} == {
        (WIDE_FACT.asset_key, d.isoformat()) for d in outcomes
    }
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "gold/wide_fact rows_match_fact (2024-01-02)" in failure.step_failure_data.error.message
    assert not [e for e in result.all_events if e.is_step_start and e.step_key == "gold__daily_user_summary"]


def test_a_range_run_whose_checks_pass_reports_each_day_and_logs_no_missing_check_result(caplog):
    """The per-day evaluations of a D1..D2 run stand for the checks' outputs: Dagster logs no blocking check
    that 'emitted no result' and no step that 'did not yield' its outputs, and the summary runs."""
    outcomes = {D1: Outcome(0, 10), D2: Outcome(0, 10)}
    with caplog.at_level(logging.INFO):
        result = materialize(wide_fact_and_summary(outcomes, summary_runs=True), instance=DagsterInstance.ephemeral(), tags=range_tags(D1, D2))
    assert result.success
    assert sorted((e.check_name, e.partition) for e in result.get_asset_check_evaluations()) == [
        (name, d.isoformat()) for name in ("column_schema_matches", "rows_match_fact") for d in outcomes
    ]
    assert [e for e in result.all_events if e.is_step_success and e.step_key == "gold__daily_user_summary"]
    logged = caplog.text + "\n".join(e.message or "" for e in result.all_events)
    assert "emitted no result" not in logged and "did not yield" not in logged
