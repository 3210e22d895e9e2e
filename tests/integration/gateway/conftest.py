"""The real gateway app over a real database (SQLite and MariaDB) and a real logs service."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.app import create_app
from gateway.auth import Authenticator
from gateway.engine import Gateway
from services.logs.__main__ import serve as serve_logs
from spinner.config import LogsSettings
from spinner.db import auth as db_auth
from spinner.db.models import DagModel, DagRun, PartitionLease, TaskInstance
from spinner.logpaths import complete_marker, local_log_path
from tests.service_calls import service_channel

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


ADMIN_PASSWORD = "admin-password-1"


async def add_user(
    sessions: async_sessionmaker[AsyncSession], username: str, roles: list[str], password: str | None = None
) -> str:
    """A user with these roles; returns an API token of theirs."""
    async with sessions() as s, s.begin():
        await db_auth.ensure_defaults(s)
        user = await db_auth.create_user(s, username, password=password, roles=roles, now=NOW)
        return await db_auth.create_token(s, user.id, "test", NOW)


@dataclass
class Site:
    client: httpx.AsyncClient  # authenticated as "admin" with a token
    gateway: Gateway
    sessions: async_sessionmaker[AsyncSession]
    log_dir: Path
    app: Any
    auth: Authenticator

    def client_for(self, token: str | None) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw", headers=headers)

    async def user(self, username: str, roles: list[str], password: str | None = None) -> httpx.AsyncClient:
        return self.client_for(await add_user(self.sessions, username, roles, password))

    def write_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, text: str, done: bool) -> None:
        path = local_log_path(self.log_dir, dag_id, run_id, task_id, try_number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if done:
            complete_marker(path).touch()


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        for i in range(3):
            s.add(
                DagModel(
                    dag_id=f"dag_{i}", partition="spinner_tier_1_0", fileloc=f"spinner_tier_1_0/t/d{i}.py", tier=1,
                    schedule="@daily", is_paused=False, is_active=True, owner="team", description="", tags=["x"],
                    max_active_runs=1, max_active_tasks=4, bundle_version="v1",
                )
            )  # fmt: skip
        s.add(
            DagModel(
                dag_id="gone", partition="spinner_tier_1_0", fileloc="x.py", tier=1, schedule=None, is_paused=False,
                is_active=False, owner="", description="", tags=[], bundle_version="v1",
            )
        )  # fmt: skip
        s.add(
            DagRun(
                dag_id="dag_0", run_id="manual__1", run_type="manual", state="success", logical_date=NOW,
                conf={"k": 1}, partition="spinner_tier_1_0", created_at=NOW, start_date=NOW, end_date=NOW,
            )
        )  # fmt: skip
        for task_id, state in (("extract", "success"), ("load", "failed")):
            s.add(
                TaskInstance(
                    dag_id="dag_0", run_id="manual__1", task_id=task_id, partition="spinner_tier_1_0", state=state,
                    try_number=1, max_tries=0, operator="BashOperator",
                )
            )  # fmt: skip


@pytest.fixture
async def site(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Site]:
    await seed(sessions)
    stop = asyncio.Event()
    address: list[str] = []
    logs = asyncio.create_task(serve_logs(LogsSettings(home=tmp_path, port=0), stop, ready=address.append))
    while not address:
        await asyncio.sleep(0.02)
    channel = service_channel(address[0], tmp_path / "identity")  # as the gateway calls it
    gw = Gateway(
        sessions=sessions, logs_channel=channel, clock=lambda: NOW, tracer=TracerProvider().get_tracer("t"),
        rpc_timeout=3,
    )  # fmt: skip
    auth = Authenticator(sessions=sessions, secret_key="test-secret", clock=lambda: NOW, cache_seconds=0)
    app = create_app(gw, auth, clock=lambda: NOW)
    await gw.start()
    token = await add_user(sessions, "admin", [db_auth.ADMIN_ROLE], ADMIN_PASSWORD)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers={"authorization": f"Bearer {token}"}
        ) as client:
            yield Site(client, gw, sessions, tmp_path / "logs", app, auth)
    finally:
        await gw.aclose()
        await channel.close()
        stop.set()
        await logs


async def add_lease(sessions: async_sessionmaker[AsyncSession], expires: dt.datetime, address: str) -> None:
    async with sessions() as s, s.begin():
        s.add(PartitionLease(partition="spinner_tier_1_0", holder="h", address=address, epoch=1, expires_at=expires))
