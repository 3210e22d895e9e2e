"""Branch, short-circuit and latest-only operators: what they ask to skip, and how a bad branch fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from spinner import DAG, BranchPythonOperator, EmptyOperator, LatestOnlyOperator, ShortCircuitOperator
from spinner.sdk import skipping
from spinner.sdk.operators.branch import BranchError
from spinner.sdk.templating import build_context

WHEN = dt.datetime(2026, 5, 17, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def no_leftover_skips() -> Iterator[None]:
    skipping.take_requested()
    yield
    skipping.take_requested()


def context_for(dag: DAG, task: Any, *, run_type: str = "manual", start: dt.datetime = WHEN) -> dict[str, Any]:
    end = start + dt.timedelta(days=1)
    return build_context(
        dag, task, run_id="r", logical_date=start, data_interval_start=start, data_interval_end=end,
        conf={}, try_number=1, run_type=run_type,
    )  # fmt: skip


def branch_dag(result: Any) -> tuple[DAG, BranchPythonOperator]:
    with DAG("branchy", tier=1) as dag:
        pick = BranchPythonOperator(task_id="pick", python_callable=lambda: result)
        a, b, c = (EmptyOperator(task_id=t) for t in "abc")
        after_a = EmptyOperator(task_id="after_a")
        pick >> [a, b, c]
        a >> after_a
    return dag, pick


@pytest.mark.parametrize(
    ("result", "skipped"), [("a", ["b", "c"]), (["a", "c"], ["b"]), (None, ["a", "b", "c"]), ([], ["a", "b", "c"])]
)
def test_branch_skips_the_direct_downstream_tasks_it_did_not_choose(result: Any, skipped: list[str]) -> None:
    dag, pick = branch_dag(result)
    assert pick.execute(context_for(dag, pick)) == result
    assert skipping.take_requested() == skipped


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("nope", r"returned unknown task id\(s\) \['nope'\]"),
        ("after_a", r"returned \['after_a'\], which are not directly downstream of it; choose among \['a', 'b', 'c'\]"),
        (3, "returned 3; return a task id, a list of task ids, or None"),
        (["a", 3], r"returned \['a', 3\]; task ids are strings"),
    ],
)
def test_a_bad_branch_fails_the_try_and_skips_nothing(result: Any, message: str) -> None:
    dag, pick = branch_dag(result)
    with pytest.raises(BranchError, match="Branch task 'pick' of DAG 'branchy' " + message):
        pick.execute(context_for(dag, pick))
    assert skipping.take_requested() == []


def test_a_direct_downstream_join_reached_through_the_chosen_branch_is_not_skipped() -> None:
    with DAG("empty_branch", tier=1):
        pick = BranchPythonOperator(task_id="pick", python_callable=lambda dag_run: dag_run.conf["go"])
        work = EmptyOperator(task_id="work")
        other = EmptyOperator(task_id="other")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        pick >> [work, other, join]
        work >> join
    assert pick.to_skip({"work"}) == {"other"}  # join comes after work: it runs
    assert pick.to_skip({"join"}) == {"work", "other"}  # the empty branch: straight to the join


def short_circuit_dag(result: Any, ignore: bool) -> tuple[DAG, ShortCircuitOperator]:
    with DAG("short", tier=1) as dag:
        check = ShortCircuitOperator(
            task_id="check", python_callable=lambda: result, ignore_downstream_trigger_rules=ignore
        )
        check >> EmptyOperator(task_id="next") >> EmptyOperator(task_id="last")
    return dag, check


def test_short_circuit_falsy_skips_everything_downstream() -> None:
    dag, check = short_circuit_dag(0, ignore=True)
    assert check.execute(context_for(dag, check)) == 0
    assert skipping.take_requested() == ["last", "next"]


def test_short_circuit_that_respects_trigger_rules_skips_only_the_direct_downstream() -> None:
    dag, check = short_circuit_dag("", ignore=False)
    check.execute(context_for(dag, check))
    assert skipping.take_requested() == ["next"]


def test_short_circuit_truthy_skips_nothing() -> None:
    dag, check = short_circuit_dag({"rows": 3}, ignore=True)
    assert check.execute(context_for(dag, check)) == {"rows": 3}
    assert skipping.take_requested() == []


def latest_only_dag() -> tuple[DAG, LatestOnlyOperator]:
    with DAG("latest", tier=1, schedule="@daily", start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        latest = LatestOnlyOperator(task_id="latest")
        latest >> EmptyOperator(task_id="publish") >> EmptyOperator(task_id="notify")
    return dag, latest


def test_latest_only_is_latest_only_in_the_interval_that_just_ended() -> None:
    dag, latest = latest_only_dag()
    ctx = context_for(dag, latest, run_type="scheduled")  # interval 05-17 .. 05-18
    assert latest.is_latest(ctx, WHEN + dt.timedelta(days=1, hours=3))
    assert not latest.is_latest(ctx, WHEN + dt.timedelta(days=2, hours=3))  # the 05-18 interval ended too
    assert not latest.is_latest(ctx, WHEN + dt.timedelta(hours=3))  # not even ended


def test_latest_only_skips_its_direct_downstream_in_an_old_run() -> None:
    dag, latest = latest_only_dag()
    latest.execute(context_for(dag, latest, run_type="scheduled", start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    assert skipping.take_requested() == ["publish"]


def test_latest_only_never_skips_a_manual_run() -> None:
    dag, latest = latest_only_dag()
    latest.execute(context_for(dag, latest, run_type="manual", start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    assert skipping.take_requested() == []
