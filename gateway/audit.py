"""The audit log: every action through the gateway, allowed or refused, with who, what, where from and the outcome."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import queries
from gateway.auth import Actor
from gateway.queries import AuditFilter
from gateway.views import AuditEntry, check_limit
from spinner.db.models import AuditLog as AuditRow

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime],
        *,
        readers: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sessions = sessions
        self._readers = readers or sessions
        self._clock = clock

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
