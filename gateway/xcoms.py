"""Reading a task instance's XComs for the web UI, REST and gRPC, with the DAG read permission.

A caller who may not read the DAG gets the same 404 as for the DAG itself, and the refusal is
audited (XCom values are task data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway import mapped, queries
from gateway.audit import AuditLog
from gateway.auth import Actor
from gateway.errors import NotFound
from gateway.views import iso
from spinner.db.models import XCom


@dataclass(frozen=True)
class XComInfo:
    key: str
    value: Any  # the JSON value as pushed
    map_index: int
    size: int  # bytes of its JSON
    timestamp: str | None

    @classmethod
    def of(cls, x: XCom) -> XComInfo:
        return cls(key=x.key, value=json.loads(x.value), map_index=x.map_index, size=len(x.value.encode()),
                   timestamp=iso(x.timestamp))  # fmt: skip

    @property
    def value_json(self) -> str:
        return json.dumps(self.value)

    @property
    def pretty(self) -> str:
        return json.dumps(self.value, indent=2, sort_keys=True)


async def task_xcoms(
    readers: async_sessionmaker[AsyncSession],
    audit: AuditLog,
    actor: Actor,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int | None = None,
) -> list[XComInfo]:
    """One instance's XComs, or with map_index None those of every instance of the task (each says its map_index)."""
    if not actor.principal.can_read(dag_id):
        details = {"map_index": map_index} if map_index is not None else None
        await audit.record(actor, "xcom.read", "denied", dag_id=dag_id, run_id=run_id, task_id=task_id, details=details)
        raise NotFound(f"DAG '{dag_id}' not found")
    async with readers() as s:
        if map_index is None:
            exists = bool((await queries.map_indexes(s, dag_id, run_id, [task_id])).get(task_id))
        else:
            exists = await mapped.instance(s, dag_id, run_id, task_id, mapped.check_map_index(map_index)) is not None
        if not exists:
            if await queries.get_run(s, dag_id, run_id) is None:
                raise NotFound(f"run '{run_id}' of DAG '{dag_id}' not found")
            raise NotFound(f"task '{task_id}' of run '{run_id}' of DAG '{dag_id}' not found")
        return [XComInfo.of(x) for x in await queries.xcoms(s, dag_id, run_id, task_id, map_index)]
