"""A sensor's RESCHEDULE report on SQLite and MariaDB: running -> up_for_reschedule, guarded, the try kept.

docs/adr/0006-sensor-reschedule.md: no history row, try_number unchanged, reschedule_count counts the pokes, first_poke_at
stays the first poke's start, and a process end applies only to its own poke.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.backends.base import TryKey
from services.executor.engine import _run_context
from services.executor.reports import Outcome, ReportRefused, ReportWriter
from spinner.db.models import DagRun, TaskInstance, TaskInstanceHistory

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
KEY = TryKey("d", "r", "sensor", 1)


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        s.add(
            DagRun(dag_id="d", run_id="r", run_type="manual", state="running", logical_date=NOW, conf={},
                   partition="p", created_at=NOW)
        )  # fmt: skip
        s.add(
            TaskInstance(dag_id="d", run_id="r", task_id="sensor", partition="p", state="queued", try_number=1,
                         max_tries=2, queued_at=NOW)
        )  # fmt: skip


async def _ti(sessions: async_sessionmaker[AsyncSession]) -> TaskInstance:
    async with sessions() as s:
        ti = await s.get(TaskInstance, ("d", "r", "sensor", -1))
        assert ti is not None
        return ti


async def test_reschedule_keeps_the_try_and_counts_pokes(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _seed(sessions)
    clock = [NOW]
    writer = ReportWriter(sessions, clock=lambda: clock[0], run_context=_run_context)
    try:
        await writer.start(KEY, "host", 1, "exec")
        first_start = clock[0]
        for poke in range(3):
            clock[0] += dt.timedelta(seconds=10)
            when = clock[0] + dt.timedelta(seconds=30)
            ended = await writer.end(KEY, Outcome(reschedule_at=when), "", ("running",))
            assert (ended.state, ended.moved) == ("up_for_reschedule", True)
            # A Finish retried gets the same answer; the poke's own process end, arriving after, changes nothing.
            again = await writer.end(KEY, Outcome(reschedule_at=when), "", ("running",))
            assert (again.state, again.moved) == ("up_for_reschedule", False)
            try:
                await writer.end(KEY, Outcome(), "exit 0", ("queued", "running"), poke=poke)
                raise AssertionError("an earlier poke's exit was applied")
            except ReportRefused:
                pass
            ti = await _ti(sessions)
            assert (ti.state, ti.try_number, ti.reschedule_count) == ("up_for_reschedule", 1, poke + 1)
            assert ti.reschedule_at == when and ti.first_poke_at == first_start
            async with sessions() as s, s.begin():  # what the scheduler does when the time comes
                row = await s.get(TaskInstance, ("d", "r", "sensor", -1))
                assert row is not None
                row.state, row.reschedule_at = "queued", None
            checked = await writer.check_queued(KEY, "p", 0)
            assert (checked.reschedule_count, checked.first_poke_at) == (poke + 1, first_start)
            clock[0] += dt.timedelta(seconds=30)
            await writer.start(KEY, "host", 2, "exec")
        # A RESCHEDULE only applies to a running try.
        clock[0] += dt.timedelta(seconds=5)
        done = await writer.end(KEY, Outcome(success=True), "", ("running",))
        assert done.state == "success"
        late = await writer.end(KEY, Outcome(reschedule_at=clock[0]), "", ("running",))
        assert (late.state, late.moved) == ("success", False)
    finally:
        await writer.aclose()
    async with sessions() as s:
        history = list((await s.execute(select(TaskInstanceHistory))).scalars())
        count = (await s.execute(select(func.count()).select_from(TaskInstanceHistory))).scalar_one()
    assert count == 1  # the try ended once; its waits were not tries
    assert history[0].try_number == 1 and history[0].start_date == first_start  # the try began at its first poke
