"""Email that tasks and callbacks ask for (RunnerService.SendNotification), sent with the platform's SMTP
settings. The credentials live in the executor's settings only: a runner sends the message, never them."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

log = logging.getLogger(__name__)

SECRET_ENV = ("SPINNER_SMTP_USER", "SPINNER_SMTP_PASSWORD")
MAX_RECIPIENTS = 50
MAX_SUBJECT = 998
MAX_BODY = 1_000_000


def scrub_secrets(environ: MutableMapping[str, str]) -> None:
    """Once the settings are read: the SMTP credentials leave the executor's environment, which local
    runners (and the fork server they come from) inherit, so task code cannot read them."""
    for name in SECRET_ENV:
        environ.pop(name, None)


class InvalidEmail(ValueError):
    """The message asked for cannot be sent as it is (no recipient, a bad address, too large)."""


class EmailFailed(Exception):
    """The SMTP server could not be reached or refused the message."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    ssl: bool = False
    sender: str = "spinner@localhost"
    timeout: float = 30.0


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...]
    subject: str
    html_content: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()


def _check_address(address: str) -> str:
    address = address.strip()
    local, _, domain = address.rpartition("@")
    if not local or not domain or any(c.isspace() or c in '<>,;"' for c in address) or len(address) > 320:
        raise InvalidEmail(f"{address!r} is not an email address")
    return address


def check(email: Email) -> Email:
    """The message with its addresses checked; raises InvalidEmail with what is wrong."""
    if not email.to:
        raise InvalidEmail("an email needs at least one recipient (to)")
    everyone = (*email.to, *email.cc, *email.bcc)
    if len(everyone) > MAX_RECIPIENTS:
        raise InvalidEmail(f"an email may have at most {MAX_RECIPIENTS} recipients, not {len(everyone)}")
    if any(c in email.subject for c in "\r\n") or len(email.subject) > MAX_SUBJECT:
        raise InvalidEmail(f"the subject must be one line of at most {MAX_SUBJECT} characters")
    if len(email.html_content) > MAX_BODY:
        raise InvalidEmail(f"the body is over {MAX_BODY} characters")
    return Email(
        to=tuple(_check_address(a) for a in email.to),
        subject=email.subject,
        html_content=email.html_content,
        cc=tuple(_check_address(a) for a in email.cc),
        bcc=tuple(_check_address(a) for a in email.bcc),
    )


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, email: Email, *, sent_for: str) -> str:
        """Sends it and returns its Message-ID. `sent_for` (the try or callback) goes in a header."""
        email = check(email)
        s = self._settings
        message = EmailMessage()
        message["From"] = s.sender
        message["To"] = ", ".join(email.to)
        if email.cc:
            message["Cc"] = ", ".join(email.cc)
        message["Subject"] = email.subject
        message["X-Spinner-Sent-For"] = sent_for.replace("\r", " ").replace("\n", " ")[:900]
        message_id = make_msgid(domain=s.sender.rpartition("@")[2] or "spinner")
        message["Message-ID"] = message_id
        message.set_content("This message is HTML; open it in a client that shows HTML.")
        message.add_alternative(email.html_content, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                recipients=[*email.to, *email.cc, *email.bcc],
                hostname=s.host,
                port=s.port,
                username=s.user or None,
                password=s.password or None,
                start_tls=s.starttls,
                use_tls=s.ssl,
                timeout=s.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as e:
            raise EmailFailed(f"the SMTP server {s.host}:{s.port} did not take the email: {e}") from None
        log.info("email %s sent for %s to %d recipient(s)", message_id, sent_for, len(email.to))
        return message_id
