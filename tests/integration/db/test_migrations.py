"""The same migrations build the schema on SQLite and on MariaDB, and match the models."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from spinner.db.engine import create_engine, session_factory
from spinner.db.migrate import current_revision, downgrade, upgrade
from spinner.db.models import Base, DagRun, TaskInstance


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        assert await current_revision(engine) is not None
        assert set(Base.metadata.tables) <= await _tables(engine)
        await downgrade(engine)
        assert not (set(Base.metadata.tables) & await _tables(engine))
        await upgrade(engine)
        assert set(Base.metadata.tables) <= await _tables(engine)
    finally:
        await engine.dispose()


async def test_schema_matches_the_models(engine: AsyncEngine) -> None:
    def diff(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_times_round_trip_as_aware_utc(sessions: async_sessionmaker[AsyncSession]) -> None:
    when = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    async with sessions() as s, s.begin():
        s.add(
            DagRun(
                dag_id="d", run_id="r", run_type="manual", state="queued", logical_date=when, conf={"a": [1]},
                partition="spinner_tier_1_0", created_at=when,
            )
        )  # fmt: skip
    async with sessions() as s:
        run = await s.get(DagRun, 1)
    assert run is not None
    assert run.logical_date == when and run.logical_date.tzinfo == dt.UTC
    assert run.conf == {"a": [1]}
    with pytest.raises(Exception, match="naive datetime"):
        async with sessions() as s, s.begin():
            s.add(
                DagRun(
                    dag_id="d", run_id="r2", run_type="manual", state="queued",
                    logical_date=dt.datetime(2026, 1, 1), partition="p", created_at=when,
                )
            )  # fmt: skip


async def test_guarded_update_lets_exactly_one_writer_win(db_url: str, engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        s.add(TaskInstance(dag_id="d", run_id="r", task_id="t", partition="p", state="queued", try_number=1))

    async def claim() -> int:
        # A second engine each: two separate connections racing, as two services would.
        eng = create_engine(db_url)
        try:
            async with session_factory(eng)() as s, s.begin():
                result = await s.execute(
                    update(TaskInstance)
                    .where(TaskInstance.task_id == "t", TaskInstance.state == "queued", TaskInstance.try_number == 1)
                    .values(state="running")
                )
                await asyncio.sleep(0.05)
                return int(result.rowcount)  # type: ignore[attr-defined]
        finally:
            await eng.dispose()

    results = await asyncio.gather(*(claim() for _ in range(4)))
    assert sorted(results) == [0, 0, 0, 1]
    async with sessions() as s:
        assert (await s.execute(text("select state from task_instance"))).scalar_one() == "running"
