"""The executor's rendered-fields store and previous-success read, on SQLite and MariaDB."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.backends.base import TryKey
from services.executor.rendered import (
    MAX_RENDERED_JSON,
    PreviousSuccess,
    RenderedRefused,
    check_fields_json,
    previous_success,
    save_rendered,
)
from spinner.db.models import DagRun, RenderedTaskInstanceFields, TaskInstance

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def run(run_id: str, logical: dt.datetime, state: str) -> DagRun:
    return DagRun(
        dag_id="d", run_id=run_id, run_type="scheduled", state=state, logical_date=logical,
        data_interval_start=logical, data_interval_end=logical + DAY, conf={}, partition="p", created_at=logical,
        start_date=logical + DAY, end_date=logical + DAY + dt.timedelta(minutes=5),
    )  # fmt: skip


async def test_rendered_fields_are_kept_per_try_only_while_it_runs(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        s.add(run("r", NOW, "running"))
        s.add(TaskInstance(dag_id="d", run_id="r", task_id="t", partition="p", state="running", try_number=2,
                           max_tries=2))  # fmt: skip
    key = TryKey("d", "r", "t", 2)
    for fields in ({"bash_command": "echo 1"}, {"bash_command": "echo 2"}):  # sent again: replaced
        async with sessions() as s, s.begin():
            await save_rendered(s, key, check_fields_json(json.dumps(fields)), NOW)
    async with sessions() as s:
        row = await s.get(RenderedTaskInstanceFields, ("d", "r", "t", -1, 2))
    assert row is not None and json.loads(row.rendered_fields) == {"bash_command": "echo 2"}
    for stale in (TryKey("d", "r", "t", 1), TryKey("d", "r", "other", 2)):
        async with sessions() as s, s.begin():
            with pytest.raises(RenderedRefused, match="not running this try"):
                await save_rendered(s, stale, "{}", NOW)
    with pytest.raises(RenderedRefused, match="JSON object"):
        check_fields_json("[1]")
    with pytest.raises(RenderedRefused, match="not valid JSON"):
        check_fields_json("{")
    with pytest.raises(RenderedRefused, match="at most"):
        check_fields_json(json.dumps({"x": "y" * MAX_RENDERED_JSON}))


async def test_previous_success_is_the_latest_successful_run_before(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        s.add_all([run("a", NOW - 3 * DAY, "success"), run("b", NOW - 2 * DAY, "success"),
                   run("c", NOW - DAY, "failed"), run("d", NOW, "running"), run("e", NOW + DAY, "success")])  # fmt: skip
    async with sessions() as s:
        got = await previous_success(s, "d", "d")
        first = await previous_success(s, "d", "a")
    start = NOW - 2 * DAY
    assert got == PreviousSuccess(
        logical_date=start.isoformat(), data_interval_start=start.isoformat(),
        data_interval_end=(start + DAY).isoformat(), start_date=(start + DAY).isoformat(),
        end_date=(start + DAY + dt.timedelta(minutes=5)).isoformat(),
    )  # fmt: skip
    assert first == PreviousSuccess()


def test_previous_success_answers_are_reused_for_a_while() -> None:
    from services.executor.rendered import PreviousSuccessCache

    now = [NOW]
    cache = PreviousSuccessCache(lambda: now[0], ttl=10, size=2)
    found = PreviousSuccess(logical_date="x")
    cache.put("d", "r1", found)
    assert cache.get("d", "r1") is found and cache.get("d", "r2") is None
    now[0] += dt.timedelta(seconds=11)
    assert cache.get("d", "r1") is None  # too old: read again
    for run_id in ("a", "b", "c"):
        cache.put("d", run_id, found)
    assert cache.get("d", "a") is None and cache.get("d", "c") is found  # bounded, oldest out first
