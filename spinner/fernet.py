"""Encryption at rest of variables and connections: Fernet (cryptography), keyed from the settings.

The key is `fernet_key` (SPINNER_FERNET_KEY): one key, or several separated by commas, the newest
first (values are encrypted with the first and decrypted with any, so keys can be rotated). Empty:
the file <home>/fernet_key, which `spinner standalone` makes once. The executor (which decrypts for
task runners) and the gateway (which encrypts what admins set) refuse to start without one. Task
runners never get it: they ask the executor for one value at a time with their try's token.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used: the fork servers import this module for task_environ only
    from cryptography.fernet import MultiFernet

KEY_FILE = "fernet_key"
MAKE_ONE = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
# Names of the platform's own secrets: never handed on to task runners or DAG-parsing processes.
PLATFORM_ENV_PREFIX = "SPINNER_"
PLATFORM_SECRET_ENV = ("SPINNER_FERNET_KEY", "SPINNER_TOKEN_SECRET", "SPINNER_SECRET_KEY")


class FernetKeyError(Exception):
    """No usable key: the service must not start (the message says how to give it one)."""


class CannotDecrypt(Exception):
    """A stored value does not decrypt with the configured key(s)."""


class SecretBox:
    """Encrypts with the newest key, decrypts with any of them."""

    def __init__(self, keys: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise FernetKeyError("the Fernet key is empty")
        try:
            self._fernet: MultiFernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except (ValueError, TypeError):
            raise FernetKeyError(
                f"the Fernet key is not valid: it must be 32 url-safe base64-encoded bytes (make one with: {MAKE_ONE})"
            ) from None

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str, what: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise CannotDecrypt(
                f"{what} cannot be decrypted with this service's Fernet key "
                "(it was stored with another key: set it again, or add the old key to fernet_key)"
            ) from None


def new_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def ensure_secret_file(path: Path, make: Callable[[], str]) -> Path:
    """`path`, made once with `make()` (readable by its owner only) when it is missing. Two processes
    that race make one file: the loser keeps the winner's."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        with os.fdopen(fd, "w") as f:
            f.write(make() + "\n")
    return path


def ensure_key_file(home: Path) -> Path:
    """<home>/fernet_key, made once (readable by its owner only), as standalone keeps its other secrets."""
    return ensure_secret_file(home / KEY_FILE, new_key)


def load_box(fernet_key: str, home: Path, service: str) -> SecretBox:
    """The configured key, else <home>/fernet_key; FernetKeyError (with what to do) when there is none."""
    keys = fernet_key
    if not keys:
        path = home / KEY_FILE
        try:
            keys = path.read_text().strip()
        except FileNotFoundError:
            raise FernetKeyError(
                f"the {service} needs a Fernet key to encrypt and decrypt variables and connections, and has none: "
                f"set SPINNER_FERNET_KEY (the same on every gateway and executor), or put one in {path} "
                f"(`spinner standalone` makes one). Make a key with: {MAKE_ONE}"
            ) from None
        except OSError as e:
            raise FernetKeyError(f"the {service} cannot read its Fernet key file {path}: {e}") from None
    return SecretBox(keys)


def task_environ(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment DAG code may inherit (a task runner, a parse worker, the fork servers they come
    from): none of the platform's own settings. Those are all SPINNER_* variables, the database URL,
    the home folder, the services' addresses and keys among them; what a runner needs of them, the
    executor hands it explicitly (its try's token, where its log goes)."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not k.startswith(PLATFORM_ENV_PREFIX) and k not in PLATFORM_SECRET_ENV}
