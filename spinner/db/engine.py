"""Engine and session factory. SQLite gets WAL and a busy timeout so several processes can share it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

IDLE_TRANSACTION_TIMEOUT = 20  # seconds; far above the longest pause between a transaction's statements


def create_engine(url: str, *, idle_transaction_timeout: int = IDLE_TRANSACTION_TIMEOUT, **kwargs: Any) -> AsyncEngine:
    """`idle_transaction_timeout` (MariaDB): seconds a transaction may wait between statements."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url, poolclass=NullPool, connect_args={"timeout": 30, "isolation_level": None}, **kwargs
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # pysqlite's own transaction handling is off (isolation_level None): take the
            # write lock up front so two writers queue on busy_timeout instead of failing.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", 3600)
    kwargs.setdefault("isolation_level", "READ COMMITTED")
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _idle_timeout(dbapi_conn: Any, _record: Any) -> None:
        # A process frozen inside a transaction (SIGSTOP, a VM pause) would hold its row locks, the
        # partition lease's among them, for ever. MariaDB ends such a transaction after this long, so a
        # standby can take the lease; the frozen process finds its connection gone when it wakes.
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"SET SESSION idle_transaction_timeout = {int(idle_transaction_timeout)}")
        except Exception:  # MySQL has no such setting; its lock waits time out instead
            pass
        finally:
            cur.close()

    return engine


def create_read_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """For sessions that only read (the gateway's listings and pages).

    On SQLite, `create_engine`'s transactions take the write lock up front (BEGIN IMMEDIATE),
    so even a read would queue behind every writer and every other reader; here a transaction
    is a plain deferred BEGIN, which in WAL mode reads a snapshot beside the writers, and
    connections are pooled instead of opened per session. Other databases: `create_engine`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, **kwargs)
    engine = create_async_engine(url, connect_args={"timeout": 30, "isolation_level": None}, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits on success, rolls back on error. Query functions never commit."""
    async with sessions() as session, session.begin():
        yield session
