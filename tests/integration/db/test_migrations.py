"""The same migrations build the schema on SQLite and on MariaDB, and it matches the models."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from spinner.db.engine import create_engine
from spinner.db.migrate import current_revision, downgrade, upgrade
from spinner.db.models import Base, DagRun, TaskInstance

MODEL_TABLES = set(Base.metadata.tables)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        assert await current_revision(engine) is not None
        assert await _tables(engine) - {"alembic_version"} == MODEL_TABLES

        await downgrade(engine)
        assert await current_revision(engine) is None
        assert not (await _tables(engine) & MODEL_TABLES), "downgrade to base left tables behind"

        await upgrade(engine)
        assert await _tables(engine) - {"alembic_version"} == MODEL_TABLES
    finally:
        await engine.dispose()


async def test_schema_matches_the_models(engine: AsyncEngine) -> None:
    """What `alembic revision --autogenerate` would write must be nothing: no migration is missing."""

    def diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def _run(run_id: str, logical_date: dt.datetime) -> DagRun:
    return DagRun(
        dag_id="d",
        run_id=run_id,
        run_type="manual",
        state="queued",
        logical_date=logical_date,
        partition="spinner_tier_1_0",
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


async def test_times_round_trip_as_aware_utc_with_microseconds(sessions: async_sessionmaker[AsyncSession]) -> None:
    when = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    async with sessions() as s, s.begin():
        s.add(_run("r", when))

    async with sessions() as s:
        run = (await s.execute(select(DagRun).where(DagRun.run_id == "r"))).scalar_one()
        stored = (await s.execute(text("SELECT logical_date FROM dag_run WHERE run_id = 'r'"))).scalar_one()
    assert run.logical_date == when
    assert run.logical_date.tzinfo is dt.UTC
    assert run.logical_date.microsecond == 123456
    # Stored as naive UTC (MySQL DATETIME has no zone): 12:30 at +02:00 is 10:30.
    assert str(stored).startswith("2026-03-01 10:30:15.123456")


async def test_naive_times_are_rejected(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with sessions() as s, s.begin():
            s.add(_run("naive", dt.datetime(2026, 1, 1)))
    async with sessions() as s:
        assert (await s.execute(select(DagRun))).first() is None


async def test_guarded_update_lets_exactly_one_of_two_concurrent_writers_win(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s, s.begin():
        s.add(TaskInstance(dag_id="d", run_id="r", task_id="t", partition="p", state="queued", try_number=1))

    claim = text(
        "UPDATE task_instance SET state = 'running' "
        "WHERE dag_id = 'd' AND run_id = 'r' AND task_id = 't' AND state = 'queued' AND try_number = 1"
    )
    both_started = asyncio.Barrier(2)

    async def writer() -> int:
        # Each session holds its own connection: two services racing for the same try.
        async with sessions() as s:
            await both_started.wait()
            async with s.begin():
                result = await s.execute(claim)
                await asyncio.sleep(0.1)  # keep the transaction open while the other one tries
                return int(result.rowcount)  # type: ignore[attr-defined]

    async with asyncio.timeout(30):
        results = await asyncio.gather(writer(), writer())
    assert sorted(results) == [0, 1]
    async with sessions() as s:
        assert (await s.execute(select(TaskInstance.state))).scalar_one() == "running"


async def test_0012_gives_every_user_a_session_version(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine, "0011")
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO user (username, email, password_hash, active, created_at) "
                     "VALUES ('ann', '', '', 1, '2026-01-01 00:00:00')")
            )  # fmt: skip
        await upgrade(engine, "0012")
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT session_version FROM user"))).scalar_one() == 0
        await downgrade(engine, "0011")
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT username FROM user"))).scalar_one() == "ann"
    finally:
        await engine.dispose()


async def test_0013_marks_what_dag_files_declare_as_synced_and_the_rest_as_admin_grants(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine, "0012")
        async with engine.begin() as conn:
            for statement in [
                "INSERT INTO role (id, name) VALUES (1, 'spinner-users'), (2, 'team-a'), (3, 'auditors')",
                "INSERT INTO permission (id, action, resource) VALUES (1, 'can_dag_read', 'DAG:*'), "
                "(2, 'can_dag_edit', 'DAG:d'), (3, 'can_dag_read', 'DAG:d')",
                # spinner-users' built-in grant, team-a's from d's access_control, auditors' by an Admin
                "INSERT INTO role_permission (role_id, permission_id) VALUES (1, 1), (2, 2), (3, 3)",
            ]:
                await conn.execute(text(statement))
            await conn.execute(
                text("INSERT INTO serialized_dag (dag_id, `partition`, fileloc, data, dag_hash, bundle_version, "
                     "updated_at) VALUES ('d', 'p', 'f.py', :data, 'h', 'v', '2026-01-01 00:00:00')"),
                {"data": '{"dag_id": "d", "access_control": {"team-a": ["can_dag_edit"], "ghost": ["can_dag_read"]}}'},
            )  # fmt: skip
        await upgrade(engine, "0013")
        query = text("SELECT role_id, permission_id, source FROM role_permission ORDER BY role_id, source")
        async with engine.begin() as conn:
            assert (await conn.execute(query)).all() == [(1, 1, "admin"), (2, 2, "dag"), (3, 3, "admin")]
            # One permission both ways is two rows now; going back keeps one.
            await conn.execute(
                text("INSERT INTO role_permission (role_id, permission_id, source) VALUES (2, 2, 'admin')")
            )
        await downgrade(engine, "0012")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT role_id, permission_id FROM role_permission ORDER BY role_id"))
            ).all()
        assert rows == [(1, 1), (2, 2), (3, 3)]
        await upgrade(engine)  # and forward again
    finally:
        await engine.dispose()
