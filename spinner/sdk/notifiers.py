"""Notifiers: callables that tell people something happened, usable anywhere a callback is.

    on_failure_callback=WebhookNotifier(url="{{ params.hook }}", message="{{ ti.task_id }} failed")
    on_failure_callback=EmailNotifier(to="team@example.com", subject="{{ dag.dag_id }} failed")

Their `template_fields` are rendered with the callback's context (Jinja, as task fields) before
`notify` runs. Email goes through the executor (RunnerService.SendNotification): the SMTP server
and its credentials are platform settings that task and DAG code never see.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any, ClassVar

from spinner.sdk.templating import render_value

MAX_RECIPIENTS = 50


class BaseNotifier:
    """Subclasses implement `notify(context)`; calling the notifier renders its template fields first."""

    template_fields: ClassVar[Sequence[str]] = ()

    def render_template_fields(self, context: dict[str, Any]) -> BaseNotifier:
        """A copy with every template field rendered (the notifier itself is shared by many calls)."""
        rendered = copy.copy(self)
        for name in self.fields_to_render():
            setattr(rendered, name, render_value(getattr(self, name), context))
        return rendered

    def fields_to_render(self) -> Sequence[str]:
        return self.template_fields

    def notify(self, context: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement notify(context)")

    def __call__(self, context: dict[str, Any]) -> None:
        self.render_template_fields(context).notify(context)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _addresses(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
    return [a.strip() for a in items if a and a.strip()]


def send_email(
    to: str | Sequence[str],
    subject: str,
    html_content: str,
    *,
    cc: str | Sequence[str] | None = None,
    bcc: str | Sequence[str] | None = None,
) -> str:
    """Sends an email through the platform's SMTP server, from a task or a callback. Returns its Message-ID.

    Raises NotInTask outside a running task or callback, and grpc.RpcError when the executor refuses
    (no SMTP server configured: FAILED_PRECONDITION; bad addresses: INVALID_ARGUMENT)."""
    from spinner.runner.client import current
    from spinner.v1 import executor_pb2

    recipients = _addresses(to)
    if not recipients:
        raise ValueError("send_email needs at least one recipient")
    client = current("send_email")
    request = executor_pb2.SendNotificationRequest(
        key=client.key,
        token=client.token,
        to=recipients,
        cc=_addresses(cc),
        bcc=_addresses(bcc),
        subject=subject,
        html_content=html_content,
    )
    reply = client.call(client.stub.SendNotification, request, "sending an email", timeout=60)
    return str(reply.message_id)


class EmailNotifier(BaseNotifier):
    """Sends an email (subject and body templated) through the executor's SMTP server."""

    template_fields = ("to", "subject", "html_content", "cc", "bcc")

    def __init__(
        self,
        to: str | Sequence[str],
        subject: str = "Spinner: {{ dag.dag_id }} {{ run_id }}",
        html_content: str = "{{ dag.dag_id }} run {{ run_id }} needs your attention.",
        *,
        cc: str | Sequence[str] | None = None,
        bcc: str | Sequence[str] | None = None,
    ) -> None:
        self.to = to
        self.subject = subject
        self.html_content = html_content
        self.cc = cc
        self.bcc = bcc

    def notify(self, context: dict[str, Any]) -> None:
        send_email(self.to, self.subject, self.html_content, cc=self.cc, bcc=self.bcc)

    def __repr__(self) -> str:
        return f"<EmailNotifier to={self.to!r}>"


class WebhookNotifier(BaseNotifier):
    """POSTs JSON to a URL: `payload` (a dict, templated) or, by default, Slack's `{"text": message}`.

    A reply that is not 2xx raises, so the failure is logged where the callback ran. A URL that renders
    empty (e.g. "{{ params.alert_webhook }}" with no hook configured) sends nothing and says so."""

    template_fields = ("url", "message", "payload", "headers")

    def __init__(
        self,
        url: str,
        message: str = "{{ dag.dag_id }} {{ run_id }}: {{ reason | default('callback') }}",
        *,
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.message = message
        self.payload = payload
        self.headers = dict(headers or {})
        self.timeout = timeout

    def fields_to_render(self) -> Sequence[str]:
        # The message is not sent when a payload is: a template it names need not exist.
        return [f for f in self.template_fields if f != "message" or self.payload is None]

    def body(self) -> dict[str, Any]:
        return dict(self.payload) if self.payload is not None else {"text": self.message}

    def notify(self, context: dict[str, Any]) -> None:
        import httpx

        if not str(self.url).strip():
            print(f"{type(self).__name__}: no URL configured; nothing sent", flush=True)
            return
        content = json.dumps(self.body(), default=str)
        headers = {"Content-Type": "application/json", **self.headers}
        response = httpx.post(self.url, content=content, headers=headers, timeout=self.timeout)
        response.raise_for_status()

    def __repr__(self) -> str:
        return f"<WebhookNotifier url={self.url!r}>"
