"""BulkUpdate on SQLite and MariaDB: each row gets its own values, the guard holds, the count is right."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from spinner.db.bulk import BulkUpdate
from spinner.db.models import TaskInstance

_TI = cast(Table, TaskInstance.__table__)
T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _ti(task_id: str, state: str | None, try_number: int = 1) -> dict[str, object]:
    return {"dag_id": "d", "run_id": "r", "task_id": task_id, "partition": "p", "state": state,
            "try_number": try_number, "max_tries": 0}  # fmt: skip


async def test_each_row_gets_its_own_values_and_the_guard_holds(sessions: async_sessionmaker[AsyncSession]) -> None:
    n = 450  # more than one chunk, and a last chunk of another size
    async with sessions() as s, s.begin():
        await s.execute(insert(TaskInstance), [_ti(f"t{i:03d}", "queued" if i % 10 else "success") for i in range(n)])
    started = BulkUpdate(
        _TI,
        keys=["dag_id", "run_id", "task_id", "try_number"],
        values=["start_date", "hostname", "pid", "error"],
        constants={"state": "running"},
        guard=_TI.c.state == "queued",
    )
    rows = [
        {"dag_id": "d", "run_id": "r", "task_id": f"t{i:03d}", "try_number": 1,
         "start_date": T0 + dt.timedelta(seconds=i), "hostname": f"host-{i}", "pid": 1000 + i,
         "error": "" if i % 3 else "x" * 5000}
        for i in range(n)
    ]  # fmt: skip
    rows.append({**rows[1], "task_id": "t001", "try_number": 2, "hostname": "wrong try"})  # another try: no match
    async with sessions() as s, s.begin():
        changed = await started.execute(s, rows)
    assert changed == n - n // 10  # the ended tries (every tenth) and the wrong try were refused by the guard
    async with sessions() as s:
        got = {r.task_id: r for r in (await s.execute(select(TaskInstance))).scalars()}
    for i in range(n):
        ti = got[f"t{i:03d}"]
        if i % 10 == 0:
            assert (ti.state, ti.start_date, ti.hostname) == ("success", None, "")
            continue
        assert ti.state == "running"
        assert ti.start_date == T0 + dt.timedelta(seconds=i)
        assert (ti.hostname, ti.pid) == (f"host-{i}", 1000 + i)
        assert ti.error == ("" if i % 3 else "x" * 5000)


async def test_null_values_and_a_single_row(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        await s.execute(insert(TaskInstance), [_ti("a", "running"), _ti("b", "running")])
        await s.execute(_TI.update().values(end_date=T0, duration=3.5))
    # The guard's own parameter (a literal, named by SQLAlchemy) must not collide with the rows' values.
    cleared = BulkUpdate(
        _TI, keys=["dag_id", "run_id", "task_id"], values=["state", "end_date", "duration"],
        guard=_TI.c.state == "running",
    )  # fmt: skip
    async with sessions() as s, s.begin():
        rows = [{"dag_id": "d", "run_id": "r", "task_id": t, "state": None, "end_date": None, "duration": None}
                for t in ("zz", "a")]  # fmt: skip
        assert await cleared.execute(s, rows) == 1  # "zz" matches no row
    async with sessions() as s:
        got = {r.task_id: r for r in (await s.execute(select(TaskInstance))).scalars()}
    assert (got["a"].state, got["a"].end_date, got["a"].duration) == (None, None, None)
    assert (got["b"].state, got["b"].end_date, got["b"].duration) == ("running", T0, 3.5)
