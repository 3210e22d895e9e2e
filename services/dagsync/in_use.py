"""The snapshot versions runs still need: those of DAG runs that have not ended.

Each run is pinned to the bundle version it was created with, and every try of it (a retry
hours later included) runs from that version's snapshot, so dagsync never prunes one of these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from spinner.db.models import ACTIVE_RUN_STATES, DagRun


def versions_in_use(sessions: async_sessionmaker[AsyncSession]) -> Callable[[], Awaitable[frozenset[str]]]:
    async def read() -> frozenset[str]:
        q = select(DagRun.bundle_version).where(DagRun.state.in_(ACTIVE_RUN_STATES), DagRun.bundle_version != "")
        async with sessions() as s:
            return frozenset((await s.execute(q.distinct())).scalars())

    return read
