"""XCom through the runner API: a running try pushes values of its own task instance and pulls any.

The servicer has checked the try's token; here the try must also be the task instance's current
try and running, so a stale runner (its try was cleared or timed out) can neither write nor read.
A push locks the task instance's row (as reports do), so it cannot race the try's end or a clear.

A try pushes as its own task instance: an instance of a mapped task writes the XCom row of its
map_index. A pull answers one item per instance that pushed the key: a single item (map_index -1)
for an unmapped task, one per instance in map_index order for a mapped one, and one item with
found false for a task that pushed nothing (docs/adr/0007-dynamic-task-mapping.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.backends.base import TryKey
from spinner.db import xcom as db_xcom
from spinner.db.engine import transaction
from spinner.db.models import XCOM_KEY_LEN, DagRun, TaskInstance
from spinner.mapping import NO_MAP_INDEX

MAX_PULL_TASKS = 1000
DEADLOCK_RETRIES = 5


class XComRefused(Exception):
    """The request is malformed or too large (the executor answers INVALID_ARGUMENT)."""


class XComNotRunning(Exception):
    """The try is not the running try of its task instance (FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class PullItem:
    task_id: str
    found: bool
    value_json: str = ""
    run_id: str = ""
    map_index: int = NO_MAP_INDEX  # the instance that pushed it


def too_large_message(key: str, size: int, limit: int) -> str:
    return f"XCom '{key}' is {size} bytes of JSON, more than the limit of {limit} bytes (xcom_max_bytes)"


def check_key(key: str) -> None:
    if not key:
        raise XComRefused("an XCom key must not be empty")
    if len(key) > XCOM_KEY_LEN:
        raise XComRefused(f"XCom key {key[:40]!r}... is longer than {XCOM_KEY_LEN} characters")


class XComs:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, clock: Callable[[], dt.datetime], max_bytes: int
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.max_bytes = max_bytes

    async def push(self, key: TryKey, xcom_key: str, value_json: str) -> None:
        check_key(xcom_key)
        size = len(value_json.encode())
        if size > self.max_bytes:
            raise XComRefused(too_large_message(xcom_key, size, self.max_bytes))
        try:
            json.loads(value_json)
        except ValueError as e:
            raise XComRefused(f"XCom '{xcom_key}' is not valid JSON: {e}") from None
        for attempt in range(DEADLOCK_RETRIES):
            try:
                async with transaction(self._sessions) as session:
                    await _running(session, key, lock=True)
                    written = await db_xcom.set_value(
                        session, dag_id=key.dag_id, run_id=key.run_id, task_id=key.task_id, key=xcom_key,
                        value_json=value_json, now=self._clock(), map_index=key.map_index,
                    )  # fmt: skip
                    if not written:
                        raise XComNotRunning(f"run {key.run_id} of {key.dag_id} is gone")
                return
            except DBAPIError as e:
                # MariaDB picks a victim when writers lock rows in different orders; the write is safe to redo.
                if attempt + 1 < DEADLOCK_RETRIES and _is_deadlock(e):
                    await asyncio.sleep(0.01 * (attempt + 1))
                    continue
                raise

    async def pull(
        self, key: TryKey, dag_id: str, task_ids: Sequence[str], xcom_key: str, include_prior_dates: bool
    ) -> list[PullItem]:
        check_key(xcom_key)
        if not task_ids:
            raise XComRefused("name at least one task to pull XComs from")
        if len(task_ids) > MAX_PULL_TASKS:
            raise XComRefused(f"at most {MAX_PULL_TASKS} tasks per pull")
        async with self._sessions() as session:
            await _running(session, key, lock=False)
            before = None
            if include_prior_dates:
                before = (
                    await session.execute(
                        select(DagRun.logical_date).where(DagRun.dag_id == key.dag_id, DagRun.run_id == key.run_id)
                    )
                ).scalar_one_or_none()
            found = await db_xcom.pull_instances(
                session, dag_id=dag_id or key.dag_id, run_id=key.run_id, task_ids=task_ids, key=xcom_key,
                include_prior_dates=include_prior_dates, before=before,
            )  # fmt: skip
        items: list[PullItem] = []
        for t in task_ids:
            pulled = found.get(t)
            if not pulled:
                items.append(PullItem(t, False))
                continue
            items += [PullItem(t, True, p.value_json, p.run_id, p.map_index) for p in pulled]
        return items


async def _running(session: AsyncSession, key: TryKey, *, lock: bool) -> None:
    q = select(TaskInstance.try_number, TaskInstance.state).where(
        TaskInstance.dag_id == key.dag_id, TaskInstance.run_id == key.run_id, TaskInstance.task_id == key.task_id,
        TaskInstance.map_index == key.map_index,
    )  # fmt: skip
    row = (await session.execute(q.with_for_update() if lock else q)).first()
    if row is None or row[0] != key.try_number or row[1] != "running":
        now = "no such task instance" if row is None else f"try {row[0]} is {row[1]}"
        raise XComNotRunning(
            f"{key.describe()} is not running ({now}): XComs are read and written only while the try runs"
        )


def _is_deadlock(e: DBAPIError) -> bool:
    code = e.orig.args[0] if e.orig is not None and getattr(e.orig, "args", None) else None
    return code in (1213, 1205) or "database is locked" in str(e)
