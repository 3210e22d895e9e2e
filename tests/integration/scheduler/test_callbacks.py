"""Callbacks, notifications and deadlines through the real scheduler and executor (SQLite and MariaDB).

Task callbacks run in the task's runner; the DAG's failure callback and the deadline notifier run
once each in a callback process the executor launches; email goes to a real local SMTP server
(aiosmtpd) through the executor; the webhook to a real local HTTP server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from spinner.db.models import DagCallback
from spinner.logpaths import local_log_path
from tests.notify_servers import SmtpSink, WebhookSink, free_port, webhook_server
from tests.service_calls import service_channel

from .conftest import PARTITION, Stack

SMTP_PORT = free_port()


@pytest.fixture
def smtp_fixed() -> Iterator[SmtpSink]:
    """On SMTP_PORT, the port the executor of these tests is configured with."""
    from aiosmtpd.controller import Controller

    from tests.notify_servers import _Handler

    sink = SmtpSink(SMTP_PORT)
    controller = Controller(_Handler(sink), hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def hook() -> Iterator[WebhookSink]:
    with webhook_server() as sink:
        yield sink


def events(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


DAG_SOURCE = """
import datetime as dt
import os
import time
from spinner import DAG, Deadline, EmailNotifier, PythonOperator, Tier, WebhookNotifier

EVENTS = {events!r}

def record(name):
    def callback(context):
        ti = context.get("ti")
        with open(EVENTS, "a") as f:
            f.write(f"{{name}} {{ti.task_id if ti else '-'}} {{context.get('state', '')}} {{os.getpid()}}\\n")
    callback.__qualname__ = f"record_{{name}}"
    return callback

def boom(context):
    raise RuntimeError("this callback is broken")

def slow():
    time.sleep(3)

def fail():
    raise ValueError("no data today")

with DAG(
    dag_id="cb_flow",
    tier=Tier.TIER1,
    on_failure_callback=[record("dag_failure"), EmailNotifier(to="team@example.com", subject="{{{{ dag.dag_id }}}} failed: {{{{ reason }}}}")],
    on_success_callback=record("dag_success"),
    deadline=Deadline(after=dt.timedelta(seconds=1), reference="queued_at", notifier=record("deadline")),
) as dag:
    ok = PythonOperator(
        task_id="ok", python_callable=slow,
        on_execute_callback=record("execute"), on_success_callback=[boom, record("success")],
    )
    flaky = PythonOperator(
        task_id="flaky", python_callable=fail, retries=1, retry_delay=0,
        on_retry_callback=record("retry"),
        on_failure_callback=WebhookNotifier(url={hook!r}, message="{{{{ ti.task_id }}}} failed: {{{{ reason }}}}"),
        email=["oncall@example.com"],
    )
"""


async def _callbacks(stack: Stack, dag_id: str, run_id: str) -> list[DagCallback]:
    async with stack.sessions() as s:
        q = select(DagCallback).where(DagCallback.dag_id == dag_id, DagCallback.run_id == run_id)
        return list((await s.execute(q.order_by(DagCallback.id))).scalars())


@pytest.mark.executor_settings(smtp_host="127.0.0.1", smtp_port=SMTP_PORT)
async def test_task_and_dag_callbacks_email_webhook_and_deadline(
    stack: Stack, smtp_fixed: SmtpSink, hook: WebhookSink, tmp_path: Path
) -> None:
    log = tmp_path / "events.log"
    stack.write_dag(f"{PARTITION}/team/cb_flow.py", DAG_SOURCE.format(events=str(log), hook=hook.url))
    await stack.publish()
    await stack.wait_dag("cb_flow")
    run_id = await stack.trigger("cb_flow")
    run = await stack.wait_run("cb_flow", run_id, timeout=90)
    assert run.state == "failed"
    tis = await stack.tis("cb_flow", run_id)
    # A failing callback (boom) changes nothing: ok stays a success.
    assert (tis["ok"].state, tis["flaky"].state, tis["flaky"].try_number) == ("success", "failed", 2)

    async def settled() -> list[DagCallback] | None:
        rows = await _callbacks(stack, "cb_flow", run_id)
        kinds = sorted(r.kind for r in rows)
        done = all(r.state in ("success", "failed") for r in rows)
        return rows if done and kinds == ["deadline", "on_failure_callback"] else None

    try:
        await stack.wait_for(settled, 60, "the DAG failure callback and the deadline ran")
    except AssertionError:
        print("callbacks:", [(r.kind, r.state, r.error) for r in await _callbacks(stack, "cb_flow", run_id)])
        print("events:", events(log))
        raise
    rows = await _callbacks(stack, "cb_flow", run_id)
    assert [(r.kind, r.state) for r in rows] == [("deadline", "success"), ("on_failure_callback", "success")], [
        (r.kind, r.state, r.error) for r in rows
    ]
    failure = rows[1]
    assert failure.details["reason"] == "task_failure"
    assert rows[0].details["declared"] is True

    await stack.wait_for(lambda: len(smtp_fixed.received()) >= 3, 30, "three emails")
    seen = events(log)
    names = sorted(line.split()[0] for line in seen)
    # Each callback once: execute and success of ok, retry then webhook failure of flaky, the DAG's, the deadline.
    assert names == ["dag_failure", "deadline", "execute", "retry", "success"], seen
    pids = {line.split()[0]: line.split()[-1] for line in seen}
    assert pids["dag_failure"] not in (pids["execute"], pids["retry"])  # its own process
    assert [b["body"]["text"] for b in hook.received()] == ["flaky failed: ValueError: no data today"]

    mails = smtp_fixed.received()
    subjects = sorted(m.subject for m in mails)
    assert subjects == [
        "Spinner alert: cb_flow.flaky try 1 failed and will be retried",
        "Spinner alert: cb_flow.flaky try 2 failed",
        "cb_flow failed: task_failure",
    ], subjects
    assert all(m.message["From"] == "spinner@localhost" for m in mails)
    task_mail = next(m for m in mails if "try 2" in m.subject)
    assert task_mail.recipients == ["oncall@example.com"] and "no data today" in task_mail.html

    # The callback's output is a log of its own; the broken task callback is in the task's log.
    callback_log = local_log_path(stack.home / "logs", "cb_flow", run_id, "callback:on_failure_callback", failure.id)
    assert "on_failure_callback: calling record_dag_failure" in callback_log.read_text()
    task_log = local_log_path(stack.home / "logs", "cb_flow", run_id, "ok", 1).read_text()
    assert "on_success_callback: boom failed: RuntimeError: this callback is broken" in task_log


async def test_email_without_smtp_server_is_refused_and_logged(stack: Stack, tmp_path: Path) -> None:
    stack.write_dag(
        f"{PARTITION}/team/mailer.py",
        """
from spinner import DAG, PythonOperator, Tier, send_email

def mail():
    send_email("someone@example.com", "hello", "<p>hi</p>")

with DAG(dag_id="mailer", tier=Tier.TIER1) as dag:
    PythonOperator(task_id="mail", python_callable=mail)
""",
    )
    await stack.publish()
    await stack.wait_dag("mailer")
    run_id = await stack.trigger("mailer")
    run = await stack.wait_run("mailer", run_id)
    assert run.state == "failed"
    text = local_log_path(stack.home / "logs", "mailer", run_id, "mail", 1).read_text()
    assert "no SMTP server is configured" in text, text


async def test_run_callback_launches_a_row_once_and_refuses_stale_leases_and_bad_tokens(stack: Stack) -> None:
    import grpc

    from spinner.db.models import PartitionLease
    from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc

    from .conftest import utcnow

    other = "spinner_tier_3_0"  # no scheduler here: only this test hands the row over
    async with stack.sessions() as s, s.begin():
        row = DagCallback(
            dag_id="ghost", run_id="r1", partition=other, kind="on_failure_callback", state="pending",
            bundle_version="", fileloc="nowhere/ghost.py", details={"reason": "task_failure"},
            created_at=utcnow(), executor="", error="",
        )  # fmt: skip
        s.add(row)
        s.add(PartitionLease(partition="spinner_tier_3_1", holder="h", address="", epoch=5, expires_at=utcnow()))
    async with service_channel(stack.executor_address, stack.home / "identity", "scheduler") as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        first = await stub.RunCallback(executor_pb2.RunCallbackRequest(callback_id=row.id, partition=other), timeout=30)
        again = await stub.RunCallback(executor_pb2.RunCallbackRequest(callback_id=row.id, partition=other), timeout=30)
        assert (first.launched, again.launched) == (True, False)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.RunCallback(
                executor_pb2.RunCallbackRequest(callback_id=row.id, partition="spinner_tier_3_1", lease_epoch=1),
                timeout=30,
            )
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "stale" in (e.value.details() or "")
        runner = executor_pb2_grpc.RunnerServiceStub(ch)
        key = common_pb2.TaskTryKey(dag_id="ghost", run_id="r1", task_id="callback:on_failure_callback",
                                    try_number=row.id)  # fmt: skip
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await runner.FinishCallback(executor_pb2.FinishCallbackRequest(key=key, token="forged", success=True))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await runner.SendNotification(
                executor_pb2.SendNotificationRequest(key=key, token="forged", to=["a@x.io"], subject="s")
            )
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async def ended() -> DagCallback | None:
        async with stack.sessions() as s:
            got = await s.get(DagCallback, row.id, populate_existing=True)
            return got if got is not None and got.state in ("success", "failed") else None

    await stack.wait_for(ended, 60, "the callback process ended")
    done = await ended()
    assert done is not None and done.state == "failed" and "Readiness check failed" in done.error, done.error


@pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner")
async def test_dag_callback_runs_in_a_pod_of_its_own(stack: Stack, fake_kubernetes: object, tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    stack.write_dag(
        f"{PARTITION}/team/pod_cb.py",
        f"""
import os
from spinner import DAG, BashOperator, Tier

def record(context):
    with open({str(log)!r}, "a") as f:
        f.write(f"dag_success {{context['reason']}} {{os.environ.get('SPINNER_CALLBACK_CONTEXT') is not None}}\\n")

with DAG(dag_id="pod_cb", tier=Tier.TIER1, on_success_callback=record) as dag:
    BashOperator(task_id="a", bash_command="echo a")
""",
    )
    await stack.publish()
    await stack.wait_dag("pod_cb")
    run_id = await stack.trigger("pod_cb")
    assert (await stack.wait_run("pod_cb", run_id)).state == "success"

    async def ended() -> list[DagCallback] | None:
        rows = await _callbacks(stack, "pod_cb", run_id)
        return rows if rows and rows[0].state in ("success", "failed") else None

    await stack.wait_for(ended, 60, "the DAG success callback ran")
    rows = await _callbacks(stack, "pod_cb", run_id)
    assert [(r.kind, r.state, r.executor) for r in rows] == [("on_success_callback", "success", "executor-0")], [
        r.error for r in rows
    ]
    assert events(log) == ["dag_success success True"]


@pytest.mark.scheduler_settings(deadline_tier_1=1.0, deadline_email=["ops@example.com"])
@pytest.mark.executor_settings(smtp_host="127.0.0.1", smtp_port=SMTP_PORT)
async def test_tier_default_deadline_emails_the_configured_addresses_once(stack: Stack, smtp_fixed: SmtpSink) -> None:
    stack.write_dag(
        f"{PARTITION}/team/slowpoke.py",
        """
from spinner import DAG, BashOperator, Tier

with DAG(dag_id="slowpoke", tier=Tier.TIER1) as dag:
    BashOperator(task_id="wait", bash_command="sleep 3")
""",
    )
    await stack.publish()
    await stack.wait_dag("slowpoke")
    run_id = await stack.trigger("slowpoke")
    assert (await stack.wait_run("slowpoke", run_id)).state == "success"

    async def notified() -> list[DagCallback] | None:
        rows = await _callbacks(stack, "slowpoke", run_id)
        return rows if rows and all(r.state in ("success", "failed") for r in rows) else None

    await stack.wait_for(notified, 60, "the default deadline's email was sent")
    rows = await _callbacks(stack, "slowpoke", run_id)
    assert [(r.kind, r.state) for r in rows] == [("deadline", "success")], [r.error for r in rows]
    assert rows[0].details["declared"] is False and rows[0].details["reference"] == "queued_at"
    await stack.wait_for(lambda: smtp_fixed.received(), 30, "the email")
    [mail] = smtp_fixed.received()
    assert mail.recipients == ["ops@example.com"] and mail.subject == f"Spinner: slowpoke {run_id} missed its deadline"


@pytest.mark.executor_settings(backend="instant")
async def test_instant_backend_ends_dag_callbacks_at_once(stack: Stack) -> None:
    stack.write_dag(
        f"{PARTITION}/team/instant_cb.py",
        """
from spinner import DAG, BashOperator, Tier

with DAG(dag_id="instant_cb", tier=Tier.TIER1, on_success_callback=print) as dag:
    BashOperator(task_id="a", bash_command="echo a")
""",
    )
    await stack.publish()
    await stack.wait_dag("instant_cb")
    run_id = await stack.trigger("instant_cb")
    assert (await stack.wait_run("instant_cb", run_id)).state == "success"

    async def ended() -> list[DagCallback] | None:
        rows = await _callbacks(stack, "instant_cb", run_id)
        return rows if rows and rows[0].state == "success" else None

    await stack.wait_for(ended, 30, "the callback ended at once")


@pytest.mark.executor_settings(port="free")
async def test_a_callback_whose_process_is_gone_after_a_restart_fails_and_is_not_run_again(stack: Stack) -> None:
    from .conftest import utcnow

    await stack.stop_executor()
    async with stack.sessions() as s, s.begin():
        row = DagCallback(
            dag_id="ghost", run_id="r1", partition="spinner_tier_3_0", kind="deadline", state="running",
            bundle_version="", fileloc="ghost.py", details={}, created_at=utcnow(), started_at=utcnow(),
            executor="executor-0", error="",
        )  # fmt: skip
        s.add(row)
    await stack.start_executor()
    async with stack.sessions() as s:
        got = await s.get(DagCallback, row.id)
    assert got is not None and got.state == "failed"
    assert "The executor restarted and found no process for this callback" in got.error
