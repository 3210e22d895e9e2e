"""Variables and connections for task runners: the executor checks the try's token and that the try
is running, then reads and decrypts the one value asked for. The runner never gets the key."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor import queries
from services.executor.backends.base import TryKey
from services.executor.engine import BadToken, ExecutorError, NotQueued
from services.executor.tokens import TokenSigner
from spinner.db import varconn
from spinner.db.engine import transaction
from spinner.db.varconn import ConnectionFields
from spinner.fernet import CannotDecrypt, SecretBox


class NoKey(ExecutorError):
    """This executor has no Fernet key (the server maps it to FAILED_PRECONDITION)."""


class Undecryptable(ExecutorError):
    pass


class RunnerSecrets:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], signer: TokenSigner, box: SecretBox | None) -> None:
        self._sessions = sessions
        self._signer = signer
        self._box = box

    def _box_or_fail(self) -> SecretBox:
        if self._box is None:
            raise NoKey("this executor has no Fernet key, so it cannot read variables or connections")
        return self._box

    async def _running(self, session: AsyncSession, key: TryKey, token: str) -> None:
        if not self._signer.verify_try(key, token):
            raise BadToken("the token is not valid for this task try")
        ti = await queries.get_ti(session, key)
        if ti is None or ti.try_number != key.try_number or ti.state != "running":
            raise NotQueued("variables and connections are read only by a running try")

    async def variable(self, key: TryKey, token: str, variable_key: str) -> str | None:
        box = self._box_or_fail()
        async with transaction(self._sessions) as session:
            await self._running(session, key, token)
            try:
                found = await varconn.get_variable(session, box, variable_key)
            except CannotDecrypt as e:
                raise Undecryptable(str(e)) from None
        return found.value if found is not None else None

    async def connection(self, key: TryKey, token: str, conn_id: str) -> ConnectionFields | None:
        box = self._box_or_fail()
        async with transaction(self._sessions) as session:
            await self._running(session, key, token)
            try:
                return await varconn.get_connection(session, box, conn_id)
            except CannotDecrypt as e:
                raise Undecryptable(str(e)) from None
