"""Runner tokens: an HMAC over one task try's key, so a runner can only speak for its own try.

The key is `token_secret` (SPINNER_TOKEN_SECRET; the same on every executor replica), else the file
<home>/runner_token_key, made once: an executor restarted on the same home accepts the runners and
pods of the one before it (a random key per start refused their reports, and they ran again).

An instance of a mapped task signs its map_index too, so one instance's token never speaks for
another's (docs/adr/0007-dynamic-task-mapping.md); an unmapped try's token is what it always was,
so runners started before an upgrade keep theirs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from services.executor.backends.base import TryKey
from spinner.fernet import ensure_secret_file
from spinner.mapping import NO_MAP_INDEX, key_map_index
from spinner.v1 import common_pb2


def _message(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int) -> bytes:
    parts = [dag_id, run_id, task_id, str(try_number)]
    if map_index != NO_MAP_INDEX:
        parts.append(f"map_index={map_index}")
    return "\0".join(parts).encode()


KEY_FILE = "runner_token_key"


def token_secret(configured: str, home: Path) -> str:
    """The configured secret, else the one kept in <home>/runner_token_key (made on first use)."""
    if configured:
        return configured
    path = ensure_secret_file(home / KEY_FILE, lambda: secrets.token_hex(32))
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"{path} is empty: delete it (a new key is made) or set SPINNER_TOKEN_SECRET")
    return secret


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._key = (secret or secrets.token_hex(32)).encode()

    def sign(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = NO_MAP_INDEX) -> str:
        message = _message(dag_id, run_id, task_id, try_number, map_index)
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign_try(self, key: TryKey) -> str:
        return self.sign(key.dag_id, key.run_id, key.task_id, key.try_number, key.map_index)

    def verify(self, key: common_pb2.TaskTryKey, token: str) -> bool:
        expected = self.sign(key.dag_id, key.run_id, key.task_id, key.try_number, key_map_index(key))
        return hmac.compare_digest(expected, token)

    def verify_try(self, key: TryKey, token: str) -> bool:
        return hmac.compare_digest(self.sign_try(key), token)
