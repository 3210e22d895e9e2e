"""What the gateway shows of templates, time zones and params: a try's rendered fields, and the DAG's
zone and params (each with its default and JSON schema, for a trigger form). Reads only; the DAG's
read permission applies (a DAG the caller may not read is not found)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import InvalidRequest, NotFound
from gateway.mapped import check_map_index, instance
from gateway.views import iso
from spinner.db.models import RenderedTaskInstanceFields, SerializedDagModel
from spinner.mapping import NO_MAP_INDEX

if TYPE_CHECKING:
    from gateway.auth import Actor
    from gateway.engine import Gateway


@dataclass(frozen=True)
class RenderedInfo:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    rendered_fields: dict[str, Any]
    rendered_at: str | None


@dataclass(frozen=True)
class ParamInfo:
    name: str
    has_default: bool
    default: Any
    schema: dict[str, Any]
    description: str | None


async def _rendered_row(
    session: AsyncSession, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int | None
) -> RenderedTaskInstanceFields | None:
    q = select(RenderedTaskInstanceFields).where(
        RenderedTaskInstanceFields.dag_id == dag_id,
        RenderedTaskInstanceFields.run_id == run_id,
        RenderedTaskInstanceFields.task_id == task_id,
        RenderedTaskInstanceFields.map_index == map_index,
    )
    if try_number is not None:
        q = q.where(RenderedTaskInstanceFields.try_number == try_number)
    q = q.order_by(RenderedTaskInstanceFields.try_number.desc()).limit(1)
    return (await session.execute(q)).scalar_one_or_none()


async def rendered_fields(
    gw: Gateway,
    actor: Actor,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None,
    map_index: int = NO_MAP_INDEX,
) -> RenderedInfo:
    """A try's rendered fields (try_number None or 0: the latest try that rendered) of one task instance."""
    if try_number is not None and try_number < 0:
        raise InvalidRequest("try_number must be 1 or more (0 or none: the latest try)")
    check_map_index(map_index)
    await gw.get_run(actor, dag_id, run_id)  # the read permission, and a clear 404 for a missing run
    async with gw.readers() as s:
        row = await _rendered_row(s, dag_id, run_id, task_id, map_index, try_number or None)
        if row is None:
            await instance(s, dag_id, run_id, task_id, map_index)  # says so when map_index names no instance
    if row is None:
        which = f"try {try_number}" if try_number else "any try"
        what = f"task '{task_id}'" + (f" [{map_index}]" if map_index != NO_MAP_INDEX else "")
        raise NotFound(f"no rendered fields for {what} of run '{run_id}' ({which} has not rendered yet)")
    return RenderedInfo(
        dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, try_number=row.try_number,
        rendered_fields=json.loads(row.rendered_fields), rendered_at=iso(row.rendered_at),
    )  # fmt: skip


def describe(data: dict[str, Any]) -> dict[str, Any]:
    """The zone and params of a serialized DAG, as the API shows them."""
    params: list[ParamInfo] = []
    for name, value in (data.get("params") or {}).items():
        if isinstance(value, dict) and value.get("__type") == "param":
            has = bool(value.get("has_default", True))
            params.append(
                ParamInfo(name, has, value.get("default") if has else None, dict(value.get("schema") or {}),
                          value.get("description"))
            )  # fmt: skip
        else:  # a plain value: any conf value is accepted
            params.append(ParamInfo(name, True, value, {}, None))
    return {"timezone": data.get("timezone") or "UTC", "params": [p.__dict__ for p in params]}


async def dag_description(gw: Gateway, actor: Actor, dag_id: str) -> dict[str, Any]:
    await gw.get_dag(actor, dag_id)
    async with gw.readers() as s:
        row = await s.get(SerializedDagModel, dag_id)
    return describe(row.data if row is not None else {})
