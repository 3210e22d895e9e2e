"""Secrets masked as *** in a task's log, inside the runner before a line leaves the process.

A connection's password (and its URI, which holds it) and the value of a variable whose key looks
secret (Airflow's list: password, secret, api_key, token, ...) are registered here as the task
reads them (spinner/sdk/variables.py, spinner/sdk/connections.py). The runner's log pump
(spinner/runner/logstream.py) passes every line through `redact` before writing it anywhere: the
task's prints, its logging, a subprocess's output (BashOperator) and tracebacks alike, since all
of them reach the pump through file descriptors 1 and 2. What the runner reports (the error of a
failed try) is redacted too.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
# Shorter values would turn ordinary words of the log into ***: they are not masked.
MIN_LENGTH = 4
# Airflow's DEFAULT_SENSITIVE_FIELDS: a variable (or connection extra field) whose name contains one is secret.
SENSITIVE_NAMES = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "authorization",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "secret",
        "token",
        "keyfile_dict",
        "service_account",
    }
)


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_NAMES)


class SecretsMasker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str) -> None:
        """Masks `secret` from now on, and the forms it takes in a URI."""
        if len(secret) < MIN_LENGTH:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
        forms = {f for f in forms if len(f) >= MIN_LENGTH}
        with self._lock:
            if forms <= self._secrets:
                return
            self._secrets |= forms
            # Longest first: a secret that contains another is masked whole.
            alternatives = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in alternatives))

    def add_value(self, value: Any) -> None:
        """A secret that may be a structure (a JSON variable): every string and number leaf in it."""
        if isinstance(value, dict):
            for v in value.values():
                self.add_value(v)
        elif isinstance(value, list | tuple):
            for v in value:
                self.add_value(v)
        elif isinstance(value, str):
            self.add(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.add(str(value))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text

    def redact_bytes(self, raw: bytes) -> bytes:
        """A line as the pump read it: untouched (bytes and all) unless it holds a secret."""
        pattern = self._pattern
        if pattern is None:
            return raw
        text = raw.decode("utf-8", "surrogateescape")
        masked = pattern.sub(MASK, text)
        return raw if masked == text else masked.encode("utf-8", "surrogateescape")

    @property
    def active(self) -> bool:
        return self._pattern is not None


_masker = SecretsMasker()


def masker() -> SecretsMasker:
    """This process's masker (the runner's log pump uses it)."""
    return _masker


def mask_secret(value: Any) -> None:
    """Masks `value` in this task's log from now on (also for task code that holds its own secrets)."""
    _masker.add_value(value)


def redact(text: str) -> str:
    return _masker.redact(text)
