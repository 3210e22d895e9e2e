"""Operators on real processes, SQLite and MariaDB, with the example DAGs of examples/dags/spinner_tier_2_0/ops:
a branch skips the branch not taken and the join runs; a short circuit skips what follows; a backfill
of an old day is not the latest run, so it does not publish; EmptyOperator has no process and no log;
TriggerDagRunOperator's run exists with the conf and the pages link both ways."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.harness import Spinner

pytestmark = pytest.mark.e2e

BRANCH = "ops_weekday_branch"
NIGHTLY = "ops_nightly_load"
DASHBOARDS = "ops_dashboards"


def q(value: str) -> str:
    return quote(value, safe="")


def test_branch_short_circuit_latest_only_and_empty_operator(spinner: Spinner) -> None:
    # Started together, waited on together: the runs share the stack's time.
    weekend = spinner.trigger(BRANCH, {"weekday": 6})
    no_orders = spinner.trigger(BRANCH, {"weekday": 1, "orders": 0})
    r = spinner.request("POST", f"/api/v1/dags/{BRANCH}/backfill", json={"start": "2026-01-05", "end": "2026-01-05"})
    assert r.status_code == 201, r.text
    backfill = "backfill__2026-01-05T00:00:00+00:00"

    result = spinner.wait_for_run(BRANCH, weekend)
    assert spinner.states(result) == {
        "start": "success", "pick_branch": "success", "weekday_report": "skipped", "weekend_digest": "success",
        "join": "success", "has_new_orders": "success", "export_orders": "success", "latest_only": "success",
        "publish": "success",
    }, result  # fmt: skip
    assert result["run"]["state"] == "success"
    # EmptyOperator: the scheduler ended it; no try, so no process and no log.
    for task_id in ("start", "join"):
        assert result["tasks"][task_id]["try_number"] == 0, result["tasks"][task_id]
        logs = spinner.get(f"/api/v1/dags/{BRANCH}/runs/{q(weekend)}/tasks/{task_id}/logs")
        assert logs.status_code == 404, (logs.status_code, logs.text)
        page = spinner.get(f"/dags/{BRANCH}/runs/{q(weekend)}/tasks/{task_id}/log")
        assert 'id="no-process"' in page.text and "ended by the scheduler" in page.text, page.text
    assert "weekend digest for" in spinner.task_log(BRANCH, weekend, "weekend_digest")
    assert "from /tmp" in spinner.task_log(BRANCH, weekend, "export_orders")  # cwd

    result = spinner.wait_for_run(BRANCH, no_orders)
    states = spinner.states(result)
    assert states["weekday_report"] == "success" and states["weekend_digest"] == "skipped", states
    assert {states[t] for t in ("export_orders", "latest_only", "publish")} == {"skipped"}, states

    result = spinner.wait_for_run(BRANCH, backfill)
    states = spinner.states(result)
    assert states["weekday_report"] == "success" and states["latest_only"] == "success", states  # a Monday
    assert states["publish"] == "skipped", states  # not the latest interval


def test_trigger_dag_run_makes_a_linked_run_with_the_conf(spinner: Spinner) -> None:
    run_id = spinner.trigger(NIGHTLY)
    result = spinner.wait_for_run(NIGHTLY, run_id)
    assert spinner.states(result) == {"load_orders": "success", "refresh_dashboards": "success"}, result
    triggered_id = f"nightly__{run_id}"
    triggered = spinner.api(f"/dags/{DASHBOARDS}/runs/{q(triggered_id)}")
    day = result["run"]["logical_date"][:10]
    assert triggered["conf"] == {"day": day, "source": NIGHTLY}, triggered
    assert triggered["state"] == "success", triggered  # wait_for_completion waited for it
    assert triggered["triggered_by"] == f"task {NIGHTLY}.refresh_dashboards", triggered
    assert triggered["triggering"] == {"dag_id": NIGHTLY, "run_id": run_id, "task_id": "refresh_dashboards"}
    assert f"refreshing the dashboards for {day}" in spinner.task_log(DASHBOARDS, triggered_id, "refresh")

    # The triggering task's page links the triggered run; the triggered run's page links back.
    task_page = spinner.get(f"/dags/{NIGHTLY}/runs/{q(run_id)}/tasks/refresh_dashboards/log")
    assert task_page.status_code == 200, task_page.text
    assert f'href="/dags/{DASHBOARDS}?run_id={q(triggered_id)}"' in _unescaped(task_page.text), task_page.text
    run_page = spinner.get(f"/dags/{DASHBOARDS}?run_id={q(triggered_id)}")
    assert run_page.status_code == 200, run_page.text
    back = f'href="/dags/{NIGHTLY}/runs/{q(run_id)}/tasks/refresh_dashboards/log"'
    assert 'id="triggered-by"' in run_page.text and back in _unescaped(run_page.text), run_page.text

    audit = _wait_for(lambda: spinner.api(f"/audit?dag_id={DASHBOARDS}&action=trigger")["entries"])
    mine = [e for e in audit if e["run_id"] == triggered_id]
    assert mine and mine[0]["username"] == f"task {NIGHTLY}.refresh_dashboards" and mine[0]["outcome"] == "ok", audit


def _unescaped(html: str) -> str:
    return html.replace("&#43;", "+").replace("&#x2B;", "+").replace("&amp;", "&")


def _wait_for(read: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not value and time.monotonic() < deadline:
        time.sleep(0.3)
        value = read()
    return value
