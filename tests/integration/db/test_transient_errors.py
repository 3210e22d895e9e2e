"""Which database errors are waited out (spinner/db/errors.py), with errors the real drivers raise,
and what a gRPC client sees when one escapes a handler (spinner/grpcserver.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spinner.db.engine import create_engine
from spinner.db.errors import is_transient, retrying
from spinner.grpcserver import grpc_server
from tests.fakes.tcp_proxy import TcpProxy, free_port

log = logging.getLogger(__name__)


async def raised(call: Callable[[], Awaitable[Any]]) -> BaseException:
    try:
        await call()
    except Exception as e:
        return e
    raise AssertionError("the call did not fail")


async def execute(engine: AsyncEngine, sql: str) -> None:
    async with engine.connect() as conn:
        await conn.execute(text(sql))


async def test_a_database_that_refuses_connections_is_transient() -> None:
    engine = create_engine(f"mysql+aiomysql://root@127.0.0.1:{free_port()}/nothing")
    try:
        error = await raised(lambda: execute(engine, "SELECT 1"))
    finally:
        await engine.dispose()
    assert is_transient(error), repr(error)


@pytest.mark.parametrize("db_url", ["mariadb"], indirect=True)  # SQLite has no server to lose
async def test_a_connection_broken_mid_statement_is_transient(db_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 3306)
    await proxy.up()
    engine = create_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await proxy.down()
            error = await raised(lambda: conn.execute(text("SELECT 2")))
    except Exception as e:  # closing the broken connection may fail too: the first error is the one
        error = e
    finally:
        await proxy.aclose()
        await engine.dispose()
    assert is_transient(error), repr(error)


async def test_mistakes_are_not_transient(engine: AsyncEngine) -> None:
    missing_table = await raised(lambda: execute(engine, "SELECT * FROM no_such_table"))
    bad_sql = await raised(lambda: execute(engine, "SELEC 1"))
    assert not is_transient(missing_table), repr(missing_table)
    assert not is_transient(bad_sql), repr(bad_sql)
    assert not is_transient(ValueError("not a database error"))


async def test_retrying_waits_a_transient_error_out_and_raises_a_mistake_at_once(engine: AsyncEngine) -> None:
    down = create_engine(f"mysql+aiomysql://root@127.0.0.1:{free_port()}/nothing")
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            await execute(down, "SELECT 1")  # refused: transient
        return "done"

    try:
        assert await retrying(flaky, what="a flaky call", give_up_after=30, log=log, first_delay=0.01) == "done"
        assert calls == 3
        mistakes = 0

        async def mistake() -> None:
            nonlocal mistakes
            mistakes += 1
            await execute(engine, "SELECT * FROM no_such_table")

        await raised(lambda: retrying(mistake, what="a mistake", give_up_after=30, log=log, first_delay=0.01))
        assert mistakes == 1
        gave_up = await raised(
            lambda: retrying(lambda: execute(down, "SELECT 1"), what="down", give_up_after=0.1, log=log,
                             first_delay=0.01)
        )  # fmt: skip
        assert is_transient(gave_up)
    finally:
        await down.dispose()


async def test_a_transient_error_in_a_handler_is_unavailable_to_the_client() -> None:
    down = create_engine(f"mysql+aiomysql://root@127.0.0.1:{free_port()}/nothing")

    async def needs_the_database(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await execute(down, "SELECT 1")
        return b""

    async def broken(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise RuntimeError("a bug")

    handler = grpc.method_handlers_generic_handler(
        "test.Db",
        {
            "Read": grpc.unary_unary_rpc_method_handler(needs_the_database),
            "Broken": grpc.unary_unary_rpc_method_handler(broken),
        },
    )
    try:
        async with (
            grpc_server(host="127.0.0.1", port=0, register=[lambda s: s.add_generic_rpc_handlers((handler,))],
                        service_names=[]) as server,
            grpc.aio.insecure_channel(server.address) as channel,
        ):  # fmt: skip
            with pytest.raises(grpc.aio.AioRpcError) as unavailable:
                await channel.unary_unary("/test.Db/Read")(b"", timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await channel.unary_unary("/test.Db/Broken")(b"", timeout=10)
    finally:
        await down.dispose()
    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE, unavailable.value
    assert "the database is unavailable" in (unavailable.value.details() or "")
    assert unknown.value.code() == grpc.StatusCode.UNKNOWN, unknown.value
