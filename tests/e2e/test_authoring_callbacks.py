"""Callbacks, notifications and deadlines on real processes (`spinner standalone`), SQLite and MariaDB.

examples/dags/spinner_tier_2_0/payments/settlement_alerts.py runs as written: its task callbacks run
in the task's runner, its failure webhook and emails arrive at a real local HTTP server and a real
local SMTP server (aiosmtpd) that the executor is configured with, and its DAG failure callback runs
exactly once, in its own process, with a log shown on the run. A DAG whose deadline passes while it
runs notifies once and the miss shows on the run (REST and the run's page).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.harness import Spinner
from tests.notify_servers import SmtpSink, WebhookSink, wait_until, webhook_server

pytestmark = pytest.mark.e2e

EXAMPLE = "payments_settlement_alerts"
ONCALL = "payments-oncall@example.com"

DEADLINE_DAG = """
import datetime as dt
import time
from spinner import DAG, Deadline, PythonOperator, Tier, WebhookNotifier

with DAG("callbacks_deadline", tier=Tier.TIER2, params={"alert_webhook": ""},
         deadline=Deadline(after=dt.timedelta(seconds=1), reference="queued_at",
                           notifier=WebhookNotifier(url="{{ params.alert_webhook }}",
                                                    message="deadline missed by {{ run_id }}"))) as dag:
    PythonOperator(task_id="slow", python_callable=lambda: time.sleep(4))
"""


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookSink]:
    with webhook_server() as sink:
        yield sink


E2E_FILES = {"spinner_tier_2_0/callbacks/deadline.py": DEADLINE_DAG}


def run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def texts(hook: WebhookSink, needle: str) -> list[str]:
    return [b["body"].get("text", "") for b in hook.received() if needle in b["body"].get("text", "")]


def callbacks_when(spinner: Spinner, dag_id: str, run_id: str, done: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def check() -> bool:
        found.update(spinner.api(run_path(dag_id, run_id) + "/callbacks"))
        return bool(done(found))

    wait_until(check, 90, f"callbacks of {run_id}", seen=lambda: found)
    return found


def test_failed_run_notifies_by_webhook_and_email_once(spinner: Spinner, hook: WebhookSink, smtp: SmtpSink) -> None:
    result = spinner.run_dag(EXAMPLE, {"alert_webhook": hook.url, "simulate_failure": True})
    run_id = result["run"]["run_id"]
    assert result["run"]["state"] == "failed", result
    assert spinner.states(result) == {"import_settlements": "failed", "reconcile": "upstream_failed"}
    assert result["tasks"]["import_settlements"]["try_number"] == 2

    found = callbacks_when(
        spinner, EXAMPLE, run_id, lambda f: f.get("callbacks") and f["callbacks"][0]["state"] in ("success", "failed")
    )
    assert [(c["kind"], c["state"], c["reason"]) for c in found["callbacks"]] == [
        ("on_failure_callback", "success", "task_failure")
    ], found
    assert found["deadline_missed"] is None
    callback = found["callbacks"][0]
    # Its own process, with its own log (read like a try's, through the CLI and REST).
    callback_log = spinner.task_log(EXAMPLE, run_id, callback["log_task_id"], callback["id"])
    assert "on_failure_callback: calling WebhookNotifier" in callback_log, callback_log
    assert spinner.get(callback["log_url"]).status_code == 200

    wait_until(lambda: texts(hook, f"run {run_id}"), 30, "the DAG's webhook", seen=hook.received)
    assert texts(hook, f"run {run_id}") == [f":x: run {run_id} of {EXAMPLE} failed (task_failure)"]
    task_hooks = texts(hook, f"({run_id})")
    assert len(task_hooks) == 1 and "import_settlements failed after 2 tries" in task_hooks[0], task_hooks
    assert "ConnectionError" in task_hooks[0]

    # The task's callbacks ran in its runner, after each try's end: retry once, then failure.
    first = spinner.task_log(EXAMPLE, run_id, "import_settlements", 1)
    last = spinner.task_log(EXAMPLE, run_id, "import_settlements", 2)
    assert "[settlement-alerts] starting: import_settlements try 1" in first
    assert "[settlement-alerts] up_for_retry: import_settlements try 1" in first
    assert "[settlement-alerts] failed: import_settlements try 2" in last
    assert f"email sent to {ONCALL}" in last, last  # email_on_failure; email_on_retry is off in default_args

    def mails() -> list[Any]:
        return [m for m in smtp.received() if run_id in m.html or run_id in m.subject]

    wait_until(lambda: len(mails()) >= 2, 30, "two emails", seen=lambda: [m.subject for m in smtp.received()])
    subjects = sorted(m.subject for m in mails())
    assert subjects == [
        f"Spinner alert: {EXAMPLE}.import_settlements try 2 failed",
        f"[payments] {EXAMPLE} run {run_id} failed",
    ], subjects
    assert all(m.recipients == [ONCALL] and m.message["From"] == "spinner@test" for m in mails())


def test_successful_run_runs_task_callbacks_only(spinner: Spinner, hook: WebhookSink) -> None:
    result = spinner.run_dag(EXAMPLE, {"alert_webhook": hook.url})
    run_id = result["run"]["run_id"]
    assert result["run"]["state"] == "success", result
    assert "[settlement-alerts] success: reconcile try 1" in spinner.task_log(EXAMPLE, run_id, "reconcile")
    assert spinner.api(run_path(EXAMPLE, run_id) + "/callbacks") == {"callbacks": [], "deadline_missed": None}
    assert texts(hook, run_id) == []


def test_missed_deadline_notifies_once_and_shows_on_the_run(spinner: Spinner, hook: WebhookSink) -> None:
    result = spinner.run_dag("callbacks_deadline", {"alert_webhook": hook.url})
    run_id = result["run"]["run_id"]
    assert result["run"]["state"] == "success", result
    found = callbacks_when(
        spinner,
        "callbacks_deadline",
        run_id,
        lambda f: f.get("deadline_missed") and f["deadline_missed"]["notified"] in ("success", "failed"),
    )
    missed = found["deadline_missed"]
    assert (missed["notified"], missed["reference"], missed["after_seconds"], missed["declared"]) == (
        "success", "queued_at", 1.0, True,
    ), found  # fmt: skip
    assert [c["kind"] for c in found["callbacks"]] == ["deadline"]
    wait_until(lambda: texts(hook, f"by {run_id}"), 30, "the deadline's webhook", seen=hook.received)
    assert texts(hook, f"by {run_id}") == [f"deadline missed by {run_id}"]
    page = spinner.get(f"/dags/callbacks_deadline?run_id={quote(run_id, safe='')}")
    assert page.status_code == 200 and 'id="deadline-missed"' in page.text and "deadline missed" in page.text
