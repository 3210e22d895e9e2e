"""Callbacks and notifications: a settlement import that retries, and tells people when it fails.

What it shows (docs/authoring.md):
- task callbacks: `on_execute_callback`, `on_retry_callback` and `on_failure_callback` run in the
  task's own runner, after the try's end is recorded; a callback that fails is logged in the task's
  log and never changes the try's state;
- a WebhookNotifier (a JSON POST, Slack's {"text": ...} shape) whose URL and message are templated:
  the URL comes from the `alert_webhook` param (trigger with conf {"alert_webhook": "https://..."});
  left empty, as on `make run`, nothing is sent;
- `email` with `email_on_retry` / `email_on_failure` (Airflow's arguments) and an EmailNotifier:
  the executor sends them with the platform's SMTP settings (SPINNER_SMTP_HOST...), which DAG code
  never sees; with no SMTP server configured the refusal is logged and nothing else changes;
- the DAG's `on_failure_callback`, run once per failed run in a short-lived callback process whose
  log is shown on the run; and a `Deadline` two hours after the data interval's end.

Trigger it with conf {"simulate_failure": true} to see the failure path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner import DAG, Deadline, EmailNotifier, PythonOperator, Tier, WebhookNotifier

ONCALL = "payments-oncall@example.com"


def log_event(context: dict[str, Any]) -> None:
    """A plain callable is a callback too: it gets the same context as the task."""
    ti = context.get("ti")
    where = f"{ti.task_id} try {ti.try_number}" if ti else context["run_id"]
    print(f"[settlement-alerts] {context.get('state') or 'starting'}: {where}")


def import_settlements(params: dict[str, Any], ds: str) -> int:
    if params["simulate_failure"]:
        raise ConnectionError(f"the acquirer's settlement file for {ds} is not there yet")
    print(f"imported settlements for {ds}")
    return 42


def reconcile(ds: str) -> None:
    print(f"reconciled the ledger for {ds}")


task_failed = WebhookNotifier(
    url="{{ params.alert_webhook }}",
    message=":rotating_light: {{ dag.dag_id }}.{{ ti.task_id }} failed after {{ ti.try_number }} tries "
    "({{ run_id }}): {{ reason }}",
)
run_failed = WebhookNotifier(
    url="{{ params.alert_webhook }}",
    message=":x: run {{ run_id }} of {{ dag.dag_id }} failed ({{ reason }})",
)

with DAG(
    dag_id="payments_settlement_alerts",
    tier=Tier.TIER2,
    schedule=None,
    owner="payments",
    tags=["payments", "example", "callbacks"],
    description="Settlement import with retries, webhook and email alerts, and a deadline",
    params={"alert_webhook": "", "simulate_failure": False},
    default_args={"email": [ONCALL], "email_on_retry": False},
    on_failure_callback=[
        run_failed,
        EmailNotifier(
            to=ONCALL,
            subject="[payments] {{ dag.dag_id }} run {{ run_id }} failed",
            html_content="<p>Run <b>{{ run_id }}</b> failed: {{ reason }}. See its callbacks on the run's page.</p>",
        ),
    ],
    deadline=Deadline(after=dt.timedelta(hours=2), reference="logical_date", notifier=run_failed),
) as dag:
    fetch = PythonOperator(
        task_id="import_settlements",
        python_callable=import_settlements,
        retries=1,
        retry_delay=dt.timedelta(seconds=1),
        on_execute_callback=log_event,
        on_retry_callback=log_event,
        on_failure_callback=[log_event, task_failed],
    )
    fetch >> PythonOperator(task_id="reconcile", python_callable=reconcile, on_success_callback=log_event)
