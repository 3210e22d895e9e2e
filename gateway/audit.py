"""The audit log: every action through the gateway, allowed or refused, with who, what, where from and the outcome."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import queries
from gateway.auth import Actor
from gateway.queries import AuditFilter
from gateway.views import AuditEntry, check_limit
from spinner.db import auth as db_auth
from spinner.db.models import AuditLog as AuditRow

log = logging.getLogger(__name__)

PER_ADDRESS = 5  # refusals of unauthenticated callers written a second, per address
OVERALL = 50  # and of every address together (a spray from many addresses stays bounded too)
MAX_ADDRESSES = 10_000  # addresses remembered; the oldest are forgotten past this


class RefusalLimiter:
    """How many audit rows a caller nobody knows may cause: at most PER_ADDRESS a second per address
    and OVERALL a second in all, in this gateway process.

    Refusals past the limit are counted, not written; the next row written for that address says
    how many it stands for, so the audit log shows a flood without being one.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, per_address: int = PER_ADDRESS, overall: int = OVERALL
    ) -> None:
        self._clock = clock
        self._per_address = per_address
        self._overall = overall
        self._second = -1
        self._written: dict[str, int] = {}  # this second's rows, by address
        self._total = 0
        self._skipped: dict[str, int] = {}  # by address: refusals not written since its last row

    def admit(self, remote_addr: str) -> int | None:
        """None: do not write this one. Else write it, standing for itself and this many unwritten before it."""
        second = int(self._clock())
        if second != self._second:
            self._second, self._written, self._total = second, {}, 0
        if self._total >= self._overall or self._written.get(remote_addr, 0) >= self._per_address:
            self._skipped[remote_addr] = self._skipped.pop(remote_addr, 0) + 1  # to the end: oldest first
            while len(self._skipped) > MAX_ADDRESSES:
                del self._skipped[next(iter(self._skipped))]
            return None
        self._written[remote_addr] = self._written.get(remote_addr, 0) + 1
        self._total += 1
        return self._skipped.pop(remote_addr, 0)


class AuditLog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime],
        *,
        readers: async_sessionmaker[AsyncSession] | None = None,
        limiter: RefusalLimiter | None = None,
    ) -> None:
        self._sessions = sessions
        self._readers = readers or sessions
        self._clock = clock
        self.limiter = limiter or RefusalLimiter()

    async def record(
        self,
        actor: Actor | str,
        action: str,
        outcome: str,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        remote_addr: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Writes one entry in its own transaction: it stays even when the action failed.

        A failure to write is logged loudly and raised: an action must not happen unrecorded.
        """
        if isinstance(actor, Actor):
            username, remote_addr = actor.username, actor.remote_addr
        else:
            username = actor
        row = AuditRow(
            ts=self._clock(), username=username[:200], action=action, dag_id=_cut(dag_id), run_id=_cut(run_id),
            task_id=_cut(task_id), remote_addr=remote_addr[:100], outcome=outcome, details=details or {},
        )  # fmt: skip
        try:
            async with self._sessions() as s, s.begin():
                await queries.add_audit(s, row)
        except SQLAlchemyError:
            log.exception("could not write the audit entry %s %s by %s on %s", action, outcome, username, dag_id)
            raise

    async def refused(
        self,
        actor: Actor | str,
        action: str,
        *,
        remote_addr: str,
        dag_id: str | None = None,
        run_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """A refusal anyone can cause many of (a forged post, a bad CSRF token): a "denied" entry,
        rate-limited per address like refused tokens; the next row says how many it stands for."""
        skipped = self.limiter.admit(remote_addr)
        if skipped is None:
            return
        info = {**(details or {}), **({"unrecorded_before": skipped} if skipped else {})}
        await self.record(actor, action, "denied", dag_id=dag_id, run_id=run_id, remote_addr=remote_addr, details=info)

    async def token_refused(self, remote_addr: str, credential: str, reason: str, details: dict[str, Any]) -> None:
        """A bearer token (REST) or token metadata (gRPC) refused with 401 / UNAUTHENTICATED.

        Rate-limited per address (RefusalLimiter): whoever sprays tokens must not fill the table.
        The token is never written: the first 12 hex digits of its SHA-256 at most, which match
        the start of api_token.token_hash when it is a (say, expired) token of ours.
        """
        token = credential.partition(" ")[2].strip() if " " in credential else credential.strip()
        info: dict[str, Any] = {**details, "reason": reason}
        if token:
            info["token_sha256_prefix"] = db_auth.token_digest(token)[:12]
        await self.refused("", "auth.token", remote_addr=remote_addr, details=info)

    async def entries(
        self, actor: Actor, flt: AuditFilter, limit: int = 100, offset: int = 0
    ) -> tuple[list[AuditEntry], int]:
        """Admins see everything; others the entries on DAGs they may read, and their own."""
        check_limit(limit, offset)
        p = actor.principal
        async with self._readers() as s:
            rows, total = await queries.audit_entries(
                s, flt, p.readable(), None if p.is_admin else p.username, limit, offset
            )
        return [AuditEntry.of(r) for r in rows], total


def _cut(value: str | None) -> str | None:
    return value[:250] if value is not None else None
