"""spinner/db/xcom.py on SQLite and MariaDB: replace, pull (this run, earlier runs), clear, list."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from spinner.db import xcom
from spinner.db.models import DagRun

DAY = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _run(run_id: str, day: int) -> DagRun:
    when = DAY + dt.timedelta(days=day)
    return DagRun(dag_id="d", run_id=run_id, run_type="manual", state="running", logical_date=when,
                  partition="spinner_tier_1_0", created_at=when)  # fmt: skip


async def _set(s: AsyncSession, run_id: str, task_id: str, key: str, value: str) -> bool:
    return await xcom.set_value(s, dag_id="d", run_id=run_id, task_id=task_id, key=key, value_json=value, now=DAY)


async def test_set_pull_clear_and_list(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        s.add_all([_run("r1", 1), _run("r2", 2), _run("r3", 3)])
    async with sessions() as s, s.begin():
        assert await _set(s, "r1", "a", "return_value", '"one"')
        assert await _set(s, "r2", "a", "return_value", '"two"')
        assert await _set(s, "r2", "a", "return_value", '"two again"')  # replaces
        assert await _set(s, "r2", "a", "k" * 512, "1")  # the longest key fits MySQL's key limit
        assert await _set(s, "r1", "b", "return_value", "[1]")
        assert not await _set(s, "nope", "a", "return_value", "1")  # no such run: nothing written
    async with sessions() as s:
        here = await xcom.pull(s, dag_id="d", run_id="r2", task_ids=["a", "b"], key="return_value")
        assert {t: p.value_json for t, p in here.items()} == {"a": '"two again"'}
        prior = await xcom.pull(s, dag_id="d", run_id="r3", task_ids=["a", "b", "c"], key="return_value",
                                include_prior_dates=True, before=DAY + dt.timedelta(days=3))  # fmt: skip
        assert {t: (p.run_id, p.value_json) for t, p in prior.items()} == {
            "a": ("r2", '"two again"'), "b": ("r1", "[1]"),
        }  # fmt: skip
        first = await xcom.pull(s, dag_id="d", run_id="r1", task_ids=["a"], key="return_value",
                                include_prior_dates=True, before=DAY + dt.timedelta(days=1))  # fmt: skip
        assert first["a"].run_id == "r1"  # not a later run's
        assert [x.key for x in await xcom.of_task_instance(s, "d", "r2", "a")] == ["k" * 512, "return_value"]
    async with sessions() as s, s.begin():
        assert await xcom.clear(s, [("d", "r2", "a"), ("d", "r9", "a")]) == 2
        assert await xcom.clear(s, []) == 0
    async with sessions() as s:
        assert await xcom.of_task_instance(s, "d", "r2", "a") == []
        assert len(await xcom.of_task_instance(s, "d", "r1", "a")) == 1
