"""Callbacks, notifiers and deadlines as authors declare them: checked at definition time, serialized for
the scheduler, and run with the context (a failing one is logged, never raised)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from spinner import DAG, BaseNotifier, Deadline, PythonOperator, Tier, WebhookNotifier, send_email
from spinner.runner.client import NotInTask
from spinner.runner.task_callbacks import TaskCallbacks
from spinner.sdk.callbacks import run_callbacks
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.serialization import deserialize_dag, serialize_dag
from tests.notify_servers import WebhookSink, webhook_server


def noop(context: dict[str, Any]) -> None:
    pass


@pytest.fixture
def hook() -> Iterator[WebhookSink]:
    with webhook_server() as sink:
        yield sink


def test_task_callbacks_are_a_callable_or_a_list_and_default_args_supply_them() -> None:
    with DAG("d", tier=Tier.TIER1, default_args={"on_failure_callback": noop, "email": "a@x.io; b@x.io"}) as dag:
        t = PythonOperator(task_id="t", python_callable=print, on_success_callback=[noop, noop])
    assert t.on_success_callback == (noop, noop)
    assert t.on_failure_callback == (noop,)
    assert t.on_retry_callback == () and t.on_execute_callback == () and t.on_skipped_callback == ()
    assert t.email == ("a@x.io", "b@x.io") and t.email_on_failure and t.email_on_retry
    dag.validate()  # default_args keys that are task callbacks are known


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_retry_callback": "not callable"}, "on_retry_callback must be a callable or a list of callables"),
        ({"on_success_callback": [noop, 3]}, "on_success_callback must be a callable"),
        ({"email": "not-an-address"}, "email address(es) ['not-an-address'] are not valid"),
        ({"email": 42}, "email must be an address or a list of addresses"),
    ],
)
def test_bad_task_callbacks_name_the_dag_and_task(kwargs: dict[str, Any], message: str) -> None:
    with DAG("d", tier=Tier.TIER1), pytest.raises(DagDefinitionError) as e:
        PythonOperator(task_id="t", python_callable=print, **kwargs)
    assert "DAG 'd', task 't'" in str(e.value) and message in str(e.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_failure_callback": 1}, "on_failure_callback must be a callable"),
        ({"deadline": dt.timedelta(hours=1)}, "deadline must be a Deadline"),
        ({"deadline": Deadline(after=dt.timedelta(0))}, "Deadline after must be a positive timedelta"),
        ({"deadline": Deadline(after=dt.timedelta(hours=1), reference="start")}, "reference must be one of"),  # type: ignore[arg-type]
        ({"deadline": Deadline(after=dt.timedelta(hours=1), notifier="x")}, "Deadline notifier must be a callable"),  # type: ignore[arg-type]
    ],
)
def test_bad_dag_callbacks_and_deadlines_are_definition_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DagDefinitionError) as e:
        DAG("d", tier=Tier.TIER1, **kwargs)
    assert "DAG 'd'" in str(e.value) and message in str(e.value)


def test_serialized_dag_says_which_callbacks_and_deadline_it_has() -> None:
    with DAG(
        "d", tier=Tier.TIER2, on_failure_callback=[noop],
        deadline=Deadline(after=dt.timedelta(minutes=90), reference="queued_at", notifier=noop),
    ) as dag:  # fmt: skip
        PythonOperator(task_id="t", python_callable=print, on_failure_callback=noop)
    data = serialize_dag(dag)
    assert data["callbacks"] == {"on_failure_callback": True, "deadline": {"after": 5400.0, "reference": "queued_at"}}
    assert serialize_dag(deserialize_dag(data)) == data
    with DAG("plain", tier=Tier.TIER2) as plain:
        PythonOperator(task_id="t", python_callable=print)
    assert "callbacks" not in serialize_dag(plain)  # unchanged hash for DAGs without any
    assert deserialize_dag(serialize_dag(plain)).callbacks == {}


def test_deadline_is_due_after_its_reference() -> None:
    end = dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC)
    queued = dt.datetime(2026, 1, 1, 3, tzinfo=dt.UTC)
    after = dt.timedelta(hours=2)
    assert Deadline(after=after).due(data_interval_end=end, queued_at=queued) == end + after
    assert Deadline(after=after, reference="queued_at").due(data_interval_end=end, queued_at=queued) == queued + after
    assert Deadline(after=after).due(data_interval_end=None, queued_at=queued) is None


def test_run_callbacks_logs_a_failing_one_and_runs_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []

    def boom(context: dict[str, Any]) -> None:
        raise RuntimeError("broken")

    said: list[str] = []
    failed = run_callbacks([boom, lambda c: calls.append(c["run_id"])], {"run_id": "r1"}, said.append, "on_x")
    assert failed == 1 and calls == ["r1"]
    assert any("boom failed: RuntimeError: broken" in s for s in said)
    assert "Traceback" in capsys.readouterr().out


class Recorder(BaseNotifier):
    template_fields = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
        self.sent: list[str] = []

    def notify(self, context: dict[str, Any]) -> None:
        self.sent.append(self.text)


def test_notifier_renders_its_template_fields_on_a_copy() -> None:
    notifier = Recorder("{{ dag_id }} failed")
    rendered = notifier.render_template_fields({"dag_id": "d"})
    assert rendered.text == "d failed" and notifier.text == "{{ dag_id }} failed"
    with pytest.raises(NotImplementedError):
        BaseNotifier()({})


def test_webhook_notifier_posts_templated_json(hook: WebhookSink) -> None:
    WebhookNotifier(url=hook.url, message="{{ ti }} failed")({"ti": "t1"})
    WebhookNotifier(url=hook.url, payload={"blocks": [{"text": "{{ ti }}"}]}, headers={"X-Team": "{{ team }}"})(
        {"ti": "t2", "team": "ads"}
    )
    got = hook.received()
    assert [g["body"] for g in got] == [{"text": "t1 failed"}, {"blocks": [{"text": "t2"}]}]
    assert got[1]["headers"]["X-Team"] == "ads"


def test_webhook_notifier_raises_on_an_error_reply_and_skips_an_empty_url(
    hook: WebhookSink, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    with pytest.raises(httpx.HTTPStatusError):
        WebhookNotifier(url=hook.url.replace("/hook", "/fail"))({"dag": DAG("d", tier=Tier.TIER1), "run_id": "r"})
    WebhookNotifier(url="{{ params.hook }}", message="m")({"params": {"hook": ""}})
    assert "no URL configured; nothing sent" in capsys.readouterr().out
    assert len(hook.received()) == 1


def test_send_email_outside_a_task_says_so() -> None:
    with pytest.raises(NotInTask):
        send_email("a@x.io", "s", "b")


def test_task_callbacks_run_by_end_state_and_email_failure_is_logged() -> None:
    seen: list[str] = []
    with DAG("d", tier=Tier.TIER1):
        t = PythonOperator(
            task_id="t", python_callable=print, email="oncall@x.io",
            on_execute_callback=lambda c: seen.append("execute"),
            on_retry_callback=lambda c: seen.append(f"retry {c['reason']}"),
            on_failure_callback=lambda c: seen.append(f"failure {type(c['exception']).__name__}"),
            on_skipped_callback=lambda c: seen.append("skipped"),
        )  # fmt: skip
    said: list[str] = []
    hooks = TaskCallbacks(said.append)
    hooks.ended("failed", "x")  # the DAG never loaded: nothing to call
    hooks.loaded(t, {"run_id": "r"})
    hooks.executing()
    hooks.ended("up_for_retry", "boom")
    hooks.ended("failed", "boom", ValueError("boom"))
    hooks.ended("skipped")
    hooks.ended("success")
    assert seen == ["execute", "retry boom", "failure ValueError", "skipped"]
    # No executor here: the emails of the retry and the failure could not be sent, and that was logged.
    assert sum("could not send the email to oncall@x.io" in s for s in said) == 2


def test_callbacks_after_the_end_are_stopped_after_the_time_limit() -> None:
    import time

    with DAG("d", tier=Tier.TIER1):
        t = PythonOperator(task_id="t", python_callable=print, on_failure_callback=lambda c: time.sleep(30))
    said: list[str] = []
    hooks = TaskCallbacks(said.append, limit=0.3)
    hooks.loaded(t, {"run_id": "r"})
    started = time.monotonic()
    hooks.ended("failed", "x")
    assert time.monotonic() - started < 10
    assert any("were stopped" in s for s in said), said
