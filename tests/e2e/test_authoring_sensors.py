"""Sensors on real processes, SQLite and MariaDB (docs/authoring.md, docs/adr/0006-sensor-reschedule.md).

- a reschedule-mode sensor frees its slot between pokes: in a pool of one slot another task runs
  while the sensor waits, and no runner process of the sensor exists then;
- examples/dags/spinner_tier_2_0/partners/partner_orders.py waits for a partner's file, then loads it;
- a sensor's timeout fails it without retry, with its message; soft_fail skips it;
- examples/dags/spinner_tier_2_0/finance/daily_close.py: ExternalTaskSensor waits for another DAG's run;
- examples/dags/spinner_tier_2_0/ops/platform_checks.py: time, HTTP, Python and soft_fail sensors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.harness import Spinner

pytestmark = pytest.mark.e2e

SLOT_DAG = """
import os
from pathlib import Path
from spinner import DAG, BashOperator, PythonSensor, Tier


def marker_made(params):
    with open(params["pids"], "a") as f:  # each poke says which process made it
        f.write(f"{os.getpid()}\\n")
    return Path(params["marker"]).exists()


with DAG("sensor_frees_its_slot", tier=Tier.TIER2, params={"marker": "", "pids": "", "gate": ""}) as dag:
    PythonSensor(task_id="wait", python_callable=marker_made, mode="reschedule", poke_interval=3, timeout=300,
                 pool="sensor_slot", priority_weight=10)
    BashOperator(task_id="make", pool="sensor_slot",
                 bash_command="while [ ! -e {{ params.gate }} ]; do sleep 0.2; done; touch {{ params.marker }}")
"""

TIMEOUT_DAG = """
from spinner import DAG, FileSensor, PythonSensor, Tier

with DAG("sensor_timeouts", tier=Tier.TIER2) as dag:
    FileSensor(task_id="never_arrives", filepath="/nonexistent/spinner/*.csv", mode="reschedule", poke_interval=0.5,
               timeout=2, retries=3)
    PythonSensor(task_id="optional", python_callable=lambda: False, poke_interval=0.5, timeout=2, soft_fail=True)
"""


E2E_FILES = {
    "spinner_tier_2_0/sensors_e2e/slot.py": SLOT_DAG,
    "spinner_tier_2_0/sensors_e2e/timeouts.py": TIMEOUT_DAG,
}


def _tasks(spinner: Spinner, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    path = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks"
    return {ti["task_id"]: ti for ti in spinner.api(path)["task_instances"]}


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        seen = check()
        if seen:
            return seen
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last saw {seen!r}")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status  # a zombie has ended


def test_a_waiting_sensor_holds_no_slot_and_no_process(spinner: Spinner, tmp_path: Path) -> None:
    r = spinner.request("PUT", "/api/v1/pools/sensor_slot", json={"slots": 1, "description": "one at a time"})
    assert r.status_code == 200, r.text
    conf = {"marker": str(tmp_path / "made"), "pids": str(tmp_path / "pids"), "gate": str(tmp_path / "gate")}
    run_id = spinner.trigger("sensor_frees_its_slot", conf)

    seen: list[Any] = []

    def both() -> dict[str, dict[str, Any]] | None:
        tis = _tasks(spinner, "sensor_frees_its_slot", run_id)
        states = {t: ti["state"] for t, ti in tis.items()}
        seen[:] = [tis]
        return tis if states == {"wait": "up_for_reschedule", "make": "running"} else None

    # The pool has one slot: "make" runs only because the waiting sensor gave its slot back.
    try:
        tis = _wait(both, 90, "the sensor waiting while the other task of its one-slot pool runs")
    except AssertionError as e:
        raise AssertionError(f"{e}: {seen}") from None
    assert tis["wait"]["reschedule_count"] >= 1 and tis["wait"]["try_number"] == 1, tis
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert pids and not [p for p in pids if _alive(p)], f"a sensor process still exists between pokes: {pids}"

    (tmp_path / "gate").touch()
    result = spinner.wait_for_run("sensor_frees_its_slot", run_id, timeout=120)
    assert spinner.states(result) == {"wait": "success", "make": "success"}, result
    wait = result["tasks"]["wait"]
    assert wait["try_number"] == 1 and wait["reschedule_count"] >= 1, wait  # waiting used no retry
    pokes = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(set(pokes)) == len(pokes) >= 2, pokes  # each poke was a process of its own
    log = spinner.task_log("sensor_frees_its_slot", run_id, "wait")
    assert log.count("pokes again at") >= 1 and "condition met" in log, log  # one log for the whole try


def test_partner_file_example_waits_for_the_file_then_loads_it(spinner: Spinner, tmp_path: Path) -> None:
    """examples/dags/spinner_tier_2_0/partners/partner_orders.py"""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    run_id = spinner.trigger("partner_orders", {"inbox": str(inbox)})

    def waiting() -> bool:
        return _tasks(spinner, "partner_orders", run_id).get("wait_for_orders_file", {}).get("state") == (
            "up_for_reschedule"
        )

    _wait(waiting, 90, "the file sensor waiting between pokes")
    run = spinner.api(f"/dags/partner_orders/runs/{quote(run_id, safe='')}")
    day = run["logical_date"][:10].replace("-", "")
    (inbox / f"orders_{day}.csv").write_text("order_id,amount\n1,10.50\n2,4.25\n")
    result = spinner.wait_for_run("partner_orders", run_id, timeout=120)  # the next poke is within ~10 s
    assert spinner.states(result) == {"wait_for_orders_file": "success", "load": "success"}, result
    assert "loaded 2 orders" in spinner.task_log("partner_orders", run_id, "load")


def test_sensor_timeout_fails_with_its_message_and_soft_fail_skips(spinner: Spinner) -> None:
    result = spinner.run_dag("sensor_timeouts", timeout=120)
    tasks = result["tasks"]
    assert spinner.states(result) == {"never_arrives": "failed", "optional": "skipped"}, tasks
    never = tasks["never_arrives"]
    assert never["try_number"] == 1, never  # retries=3, but a timeout is not retried
    assert "Sensor never_arrives timed out" in never["error"] and "timeout of 2 s" in never["error"], never
    assert "soft_fail" in tasks["optional"]["error"], tasks["optional"]
    assert "timed out" in spinner.task_log("sensor_timeouts", result["run"]["run_id"], "never_arrives")


def test_external_task_sensor_waits_for_another_dags_run(spinner: Spinner) -> None:
    """examples/dags/spinner_tier_2_0/finance/daily_close.py: both DAGs' scheduled runs share a logical date."""

    def scheduled_run(dag_id: str) -> dict[str, Any] | None:
        runs = spinner.api(f"/dags/{dag_id}/runs")["runs"]
        return next((r for r in runs if r["run_type"] == "scheduled"), None)

    spinner.wait_for_dag("finance_daily_close")
    close = _wait(lambda: scheduled_run("finance_daily_close"), 90, "the close's scheduled run")
    ledger = _wait(lambda: scheduled_run("finance_ledger_load"), 90, "the ledger's scheduled run")
    assert close["logical_date"] == ledger["logical_date"]
    result = spinner.wait_for_run("finance_daily_close", close["run_id"], timeout=120)
    assert spinner.states(result) == {"wait_for_ledger": "success", "close_books": "success"}, result
    ledger_run = spinner.wait_for_run("finance_ledger_load", ledger["run_id"], timeout=60)
    assert result["tasks"]["wait_for_ledger"]["end_date"] >= ledger_run["tasks"]["load_ledger"]["end_date"]
    log = spinner.task_log("finance_daily_close", close["run_id"], "wait_for_ledger")
    assert "finance_ledger_load.load_ledger" in log and "is success" in log, log


def test_platform_checks_example(spinner: Spinner) -> None:
    """examples/dags/spinner_tier_2_0/ops/platform_checks.py"""
    result = spinner.run_dag("ops_platform_checks", {"health_url": f"{spinner.url}/api/v1/health"}, timeout=120)
    tasks = result["tasks"]
    assert spinner.states(result) == {
        "settle": "success", "gateway_healthy": "success", "disk_has_room": "success", "optional_feed": "skipped",
        "report": "success",
    }, tasks  # fmt: skip
    assert tasks["settle"]["try_number"] == 0, tasks["settle"]  # decided by the scheduler: no process
    assert "200" in spinner.task_log("ops_platform_checks", result["run"]["run_id"], "gateway_healthy")
