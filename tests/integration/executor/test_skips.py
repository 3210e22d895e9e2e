"""A succeeding try's skip_task_ids, on SQLite and MariaDB: written with the success, only from state none,
only in the try's own run, and never for a try that did not succeed."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor import skips
from services.executor.backends.base import TryKey
from services.executor.engine import _run_context
from services.executor.reports import Outcome, ReportWriter
from spinner.db.models import DagRun, TaskInstance

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(seconds=2)


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    rows = {
        "r": {"pick": "running", "bad_pick": "running", "left": None, "right": None, "busy": "scheduled",
              "after_bad": None},
        "other": {"left": None},
    }  # fmt: skip
    async with sessions() as s, s.begin():
        for run_id, tasks in rows.items():
            s.add(DagRun(dag_id="d", run_id=run_id, run_type="manual", state="running",
                         logical_date=NOW if run_id == "r" else NOW - dt.timedelta(days=1), partition="p",
                         created_at=NOW))  # fmt: skip
            for task_id, state in tasks.items():
                try_number = 1 if state == "running" else 0
                s.add(TaskInstance(dag_id="d", run_id=run_id, task_id=task_id, partition="p", state=state,
                                   try_number=try_number, max_tries=0, start_date=NOW if try_number else None))  # fmt: skip


@pytest.fixture
async def writer(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[ReportWriter]:
    w = ReportWriter(sessions, clock=lambda: LATER, run_context=_run_context)
    yield w
    await w.aclose()


async def _states(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str], TaskInstance]:
    async with sessions() as s:
        return {(t.run_id, t.task_id): t for t in (await s.execute(select(TaskInstance))).scalars()}


async def test_skips_go_with_the_success_only_from_none_and_only_in_the_run(
    sessions: async_sessionmaker[AsyncSession], writer: ReportWriter
) -> None:
    await _seed(sessions)
    pick = TryKey("d", "r", "pick", 1)
    end = await writer.end(pick, Outcome(success=True), "", ("running",), skips.checked(pick, ["left", "busy"]))
    assert end.state == "success" and end.moved
    # A try that fails skips nothing, whatever it asked.
    bad = TryKey("d", "r", "bad_pick", 1)
    failed = await writer.end(bad, Outcome(), "BranchError", ("running",), ("after_bad",))
    assert failed.state == "failed"
    tis = await _states(sessions)
    assert tis[("r", "left")].state == "skipped" and tis[("r", "left")].end_date == LATER  # the scheduler sees it
    assert "Skipped by pick (try 1)" in tis[("r", "left")].error
    assert tis[("r", "right")].state is None  # chosen: not named
    assert tis[("r", "busy")].state == "scheduled"  # the scheduler owns it now: left alone
    assert tis[("other", "left")].state is None  # another run of the DAG
    assert tis[("r", "after_bad")].state is None


def test_skip_ids_are_checked() -> None:
    key = TryKey("d", "r", "pick", 1)
    assert skips.checked(key, ["b", "a", "pick", "a"]) == ("a", "b")  # never the try itself
    with pytest.raises(skips.BadSkip, match="are not task ids"):
        skips.checked(key, ["ok", "no/slash"])
