"""The executor's email: what it refuses to send, and what a real SMTP server (aiosmtpd) receives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.executor.notifications import (
    Email,
    EmailFailed,
    InvalidEmail,
    SmtpMailer,
    SmtpSettings,
    check,
    scrub_secrets,
)
from tests.notify_servers import SmtpSink, free_port, smtp_server


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


@pytest.mark.parametrize(
    ("email", "message"),
    [
        (Email(to=(), subject="s", html_content="b"), "at least one recipient"),
        (Email(to=("nobody",), subject="s", html_content="b"), "'nobody' is not an email address"),
        (Email(to=("a@x.io, b@x.io",), subject="s", html_content="b"), "is not an email address"),
        (Email(to=("a@x.io",), subject="s\r\nBcc: evil@x.io", html_content="b"), "subject must be one line"),
        (Email(to=tuple(f"u{i}@x.io" for i in range(51)), subject="s", html_content="b"), "at most 50 recipients"),
        (Email(to=("a@x.io",), subject="s", html_content="b", cc=("@x.io",)), "is not an email address"),
    ],
)
def test_bad_emails_are_refused_with_the_reason(email: Email, message: str) -> None:
    with pytest.raises(InvalidEmail) as e:
        check(email)
    assert message in str(e.value)


async def test_the_smtp_server_receives_the_email(smtp: SmtpSink) -> None:
    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=smtp.port, sender="spinner@ops.example"))
    email = Email(to=("a@x.io",), cc=("c@x.io",), bcc=("hidden@x.io",), subject="d failed", html_content="<b>hi</b>")
    message_id = await mailer.send(email, sent_for="d r t #1")
    [got] = smtp.received()
    assert got.envelope_from == "spinner@ops.example"
    assert got.recipients == ["a@x.io", "c@x.io", "hidden@x.io"]
    assert got.message["To"] == "a@x.io" and got.message["Cc"] == "c@x.io" and got.message["Bcc"] is None
    assert got.message["Message-ID"] == message_id and got.message["X-Spinner-Sent-For"] == "d r t #1"
    assert got.subject == "d failed" and got.html.strip() == "<b>hi</b>"


async def test_an_unreachable_smtp_server_is_an_email_failure() -> None:
    mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=free_port(), timeout=5))
    with pytest.raises(EmailFailed) as e:
        await mailer.send(Email(to=("a@x.io",), subject="s", html_content="b"), sent_for="x")
    assert "did not take the email" in str(e.value)


def test_smtp_credentials_leave_the_environment_runners_inherit() -> None:
    env = {"SPINNER_SMTP_USER": "u", "SPINNER_SMTP_PASSWORD": "p", "SPINNER_SMTP_HOST": "mail", "PATH": "/bin"}
    scrub_secrets(env)
    assert env == {"SPINNER_SMTP_HOST": "mail", "PATH": "/bin"}
    assert "s3cret" not in repr(SmtpSettings(host="h", password="s3cret"))
