"""Runner tokens: an HMAC over one task try's key, so a runner can only speak for its own try."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from spinner.v1 import common_pb2


def _message(dag_id: str, run_id: str, task_id: str, try_number: int) -> bytes:
    return "\0".join((dag_id, run_id, task_id, str(try_number))).encode()


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._key = (secret or secrets.token_hex(32)).encode()

    def sign(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        return hmac.new(self._key, _message(dag_id, run_id, task_id, try_number), hashlib.sha256).hexdigest()

    def verify(self, key: common_pb2.TaskTryKey, token: str) -> bool:
        expected = self.sign(key.dag_id, key.run_id, key.task_id, key.try_number)
        return hmac.compare_digest(expected, token)
