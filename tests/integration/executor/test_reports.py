"""The executor's batched report writer on SQLite and MariaDB: many concurrent reports, each decided as if alone."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.backends.base import TryKey
from services.executor.engine import _run_context
from services.executor.reports import Outcome, ReportRefused, ReportWriter, StaleLeaseRefused
from spinner.db.models import DagRun, PartitionLease, TaskInstance, TaskInstanceHistory

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
N = 120


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> list[TryKey]:
    async with sessions() as s, s.begin():
        s.add(
            DagRun(dag_id="d", run_id="r", run_type="manual", state="running", logical_date=NOW, conf={"x": 1},
                   partition="p", created_at=NOW)
        )  # fmt: skip
        s.add(PartitionLease(partition="p", holder="h", address="", epoch=3, expires_at=NOW + dt.timedelta(hours=1)))
        for i in range(N):
            s.add(
                TaskInstance(dag_id="d", run_id="r", task_id=f"t{i:03d}", partition="p", state="queued",
                             try_number=1, max_tries=1 if i % 2 else 0, queued_at=NOW)
            )  # fmt: skip
    return [TryKey("d", "r", f"t{i:03d}", 1) for i in range(N)]


@pytest.fixture
async def writer(sessions: async_sessionmaker[AsyncSession]) -> ReportWriter:
    w = ReportWriter(sessions, clock=lambda: NOW + dt.timedelta(seconds=2), run_context=_run_context)
    yield w  # type: ignore[misc]
    await w.aclose()


async def test_concurrent_reports_each_apply_once_and_share_transactions(
    sessions: async_sessionmaker[AsyncSession], writer: ReportWriter
) -> None:
    keys = await _seed(sessions)
    checks = await asyncio.gather(*(writer.check_queued(k, "p", 3) for k in keys))
    assert {c.state for c in checks} == {"queued"}

    starts = await asyncio.gather(*(writer.start(k, "host-a", 42, "exec") for k in keys))
    assert all(s.moved for s in starts)
    assert starts[0].context.conf_json == '{"x": 1}' and starts[0].context.run_type == "manual"
    # A Start sent twice by the same runner (its answer was lost) is answered the same and writes nothing.
    again = await writer.start(keys[0], "host-a", 42, "exec")
    assert not again.moved and again.context == starts[0].context
    # Another runner of a try that already runs (launched again after an executor restart) is refused.
    with pytest.raises(ReportRefused, match="already runs as pid 42 on host-a"):
        await writer.start(keys[0], "host-b", 43, "exec")

    outcomes = [Outcome(success=True) if i % 3 else Outcome() for i in range(N)]
    ends = await asyncio.gather(*(writer.end(k, o, "boom", ("running",)) for k, o in zip(keys, outcomes, strict=True)))
    # A Finish retried, and the process end arriving after it, get the first answer.
    dup = await asyncio.gather(
        writer.end(keys[0], Outcome(success=True), "", ("running",)),
        writer.end(keys[0], Outcome(), "exit 1", ("queued", "running")),
    )
    assert [d.state for d in dup] == [ends[0].state] * 2 and not any(d.moved for d in dup)

    async with sessions() as s:
        tis = {t.task_id: t for t in (await s.execute(select(TaskInstance))).scalars()}
        hist = (await s.execute(select(func.count()).select_from(TaskInstanceHistory))).scalar_one()
    assert hist == N  # one history row per ended try, never two
    for i, key in enumerate(keys):
        ti = tis[key.task_id]
        want = "success" if i % 3 else ("up_for_retry" if i % 2 else "failed")
        assert ti.state == want == ends[i].state
        assert ti.hostname == "host-a" and ti.duration == 0.0
    # Concurrent reports were written together, not one transaction each.
    assert writer.batches < writer.items / 4


async def test_reports_that_no_longer_apply_are_refused_and_change_nothing(
    sessions: async_sessionmaker[AsyncSession], writer: ReportWriter
) -> None:
    keys = await _seed(sessions)
    with pytest.raises(StaleLeaseRefused, match="stale"):
        await writer.check_queued(keys[0], "p", 2)
    with pytest.raises(ReportRefused, match="not queued"):
        await writer.check_queued(TryKey("d", "r", "t000", 2), "p", 3)
    # A person marks t001 failed while it is queued: its runner may not start it, and its end is not overwritten.
    async with sessions() as s, s.begin():
        await s.execute(update(TaskInstance).where(TaskInstance.task_id == "t001").values(state="failed"))
    results = await asyncio.gather(
        writer.start(keys[1], "h", 1, "exec"), writer.start(keys[2], "h", 1, "exec"), return_exceptions=True
    )
    assert isinstance(results[0], ReportRefused) and not isinstance(results[1], BaseException)
    end = await writer.end(keys[1], Outcome(success=True), "", ("running",))
    assert end.state == "failed" and not end.moved
    with pytest.raises(ReportRefused, match="may not start"):
        await writer.start(TryKey("d", "no-such-run", "t000", 1), "h", 1, "exec")
    async with sessions() as s:
        states = {t.task_id: t.state for t in (await s.execute(select(TaskInstance))).scalars()}
    assert states["t000"] == "queued" and states["t001"] == "failed" and states["t002"] == "running"
