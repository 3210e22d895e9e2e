"""A refused API token (REST Bearer, gRPC metadata) is audited, never with the token, a bounded number a second."""

from __future__ import annotations

import datetime as dt
import hashlib

import grpc
import httpx
import pytest
from sqlalchemy import select

from gateway.audit import PER_ADDRESS, RefusalLimiter
from gateway.server import SpinnerApiServicer
from spinner.db import auth as db_auth
from spinner.db.models import ApiToken, AuditLog, User
from spinner.v1 import gateway_pb2, gateway_pb2_grpc

from .conftest import NOW, Site
from .test_auth import FakeClock


async def _token_refusals(site: Site) -> list[AuditLog]:
    async with site.sessions() as s:
        q = select(AuditLog).where(AuditLog.action == "auth.token").order_by(AuditLog.id)
        return list((await s.execute(q)).scalars())


async def test_a_refused_bearer_token_is_audited_without_the_token(site: Site) -> None:
    token = "spn_" + "x" * 43
    r = await site.client_for(token).get("/api/v1/dags")
    assert r.status_code == 401
    r = await site.client_for(None).get("/api/v1/dags", headers={"authorization": "Basic YWRtaW46eA=="})
    assert r.status_code == 401
    first, second = await _token_refusals(site)
    assert (first.username, first.outcome, first.remote_addr) == ("", "denied", "127.0.0.1")
    assert first.details["token_sha256_prefix"] == hashlib.sha256(token.encode()).hexdigest()[:12]
    assert first.details["via"] == "rest" and first.details["path"] == "/api/v1/dags"
    assert "not valid" in first.details["reason"] and "Bearer" in second.details["reason"]
    for row in (first, second):
        assert token not in str(row.details) and "YWRtaW46eA" not in str(row.details)


async def test_an_expired_token_is_refused_and_audited(site: Site) -> None:
    async with site.sessions() as s, s.begin():
        user = (await s.execute(select(User).where(User.username == "admin"))).scalar_one()
        token = await db_auth.create_token(s, user.id, "old", NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=1))
    assert (await site.client_for(token).get("/api/v1/me")).status_code == 401
    (row,) = await _token_refusals(site)
    async with site.sessions() as s:
        stored = (await s.execute(select(ApiToken).where(ApiToken.name == "old"))).scalar_one()
    assert stored.token_hash.startswith(row.details["token_sha256_prefix"])  # an Admin can tell which token


async def test_token_refusals_write_a_bounded_number_of_rows_a_second_per_address(site: Site) -> None:
    clock = FakeClock()
    site.gateway.audit.limiter = RefusalLimiter(clock=clock)
    sprayer = site.client_for("spn_guess")
    for _ in range(12):
        assert (await sprayer.get("/api/v1/dags")).status_code == 401
    assert len(await _token_refusals(site)) == PER_ADDRESS
    # Another address has its own allowance.
    other = httpx.ASGITransport(app=site.app, client=("10.0.0.7", 1))
    async with httpx.AsyncClient(transport=other, base_url="http://gw", headers={"authorization": "Bearer x"}) as c:
        assert (await c.get("/api/v1/dags")).status_code == 401
    clock.now += 1
    assert (await sprayer.get("/api/v1/dags")).status_code == 401
    rows = await _token_refusals(site)
    assert len(rows) == PER_ADDRESS + 2
    assert rows[-1].details["unrecorded_before"] == 12 - PER_ADDRESS  # the flood is counted, not written


def test_the_limiter_bounds_every_address_together_too() -> None:
    clock = FakeClock()
    limiter = RefusalLimiter(clock=clock, per_address=5, overall=20)
    admitted = [limiter.admit(f"10.0.{i}.1") for i in range(100)]
    assert sum(a is not None for a in admitted) == 20
    clock.now += 1
    assert limiter.admit("10.0.99.1") == 1


@pytest.fixture
async def grpc_address(site: Site):
    server = grpc.aio.server()
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(SpinnerApiServicer(site.gateway, site.auth), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_a_refused_grpc_token_is_audited_and_rate_limited_too(site: Site, grpc_address: str) -> None:
    clock = FakeClock()
    site.gateway.audit.limiter = RefusalLimiter(clock=clock)
    token = "spn_" + "y" * 43
    async with grpc.aio.insecure_channel(grpc_address) as ch:
        stub = gateway_pb2_grpc.SpinnerApiStub(ch)
        for _ in range(PER_ADDRESS + 2):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.ListDags(gateway_pb2.ListDagsRequest(), metadata=(("authorization", f"Bearer {token}"),))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.ListDags(gateway_pb2.ListDagsRequest())  # no metadata at all: counted, over the limit
    rows = await _token_refusals(site)
    assert len(rows) == PER_ADDRESS
    first = rows[0]
    assert (first.username, first.outcome, first.remote_addr) == ("", "denied", "127.0.0.1")
    assert first.details["via"] == "grpc"
    assert first.details["token_sha256_prefix"] == hashlib.sha256(token.encode()).hexdigest()[:12]
    assert all(token not in str(r.details) for r in rows)
