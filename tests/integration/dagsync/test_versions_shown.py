"""Each DAG run records the bundle version it was scheduled with; the UI shows versions and how stale the snapshot is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import httpx
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.app import create_app
from gateway.auth import Authenticator
from gateway.engine import Gateway
from services.dagsync.__main__ import serve as serve_dagsync
from spinner.config import DagSyncSettings
from spinner.db import auth as db_auth
from spinner.snapshots import current_snapshot
from tests.integration.gateway.conftest import add_user
from tests.integration.scheduler.conftest import PARTITION, Stack, stack, utcnow
from tests.service_calls import service_channel

from .conftest import Bucket, wait_for

__all__ = ["stack"]  # the scheduler tests' fixture: a real scheduler and executor


async def test_each_run_keeps_the_version_it_was_scheduled_with(stack: Stack) -> None:
    source = "from spinner import DAG, BashOperator, Tier\nwith DAG('versioned', tier=Tier.TIER1) as dag:\n    BashOperator(task_id='t', bash_command='echo {}')\n"
    stack.write_dag(f"{PARTITION}/team/versioned.py", source.format("one"))
    await stack.publish()
    first_version = stack.sync.status().version
    await stack.wait_dag("versioned")
    first = await stack.trigger("versioned", run_id="first")
    assert (await stack.wait_run("versioned", first)).state == "success"

    stack.write_dag(f"{PARTITION}/team/versioned.py", source.format("two"))
    await stack.publish()
    second_version = stack.sync.status().version
    assert second_version != first_version

    async def reparsed() -> bool:
        from spinner.db.models import DagModel

        async with stack.sessions() as s:
            dag = await s.get(DagModel, "versioned", populate_existing=True)
            return dag is not None and dag.bundle_version == second_version

    await Stack.wait_for(reparsed, 30, "the DAG carries the new bundle version")
    second = await stack.trigger("versioned", run_id="second")
    assert (await stack.wait_run("versioned", second)).state == "success"
    run1, run2 = await stack.run("versioned", first), await stack.run("versioned", second)
    assert run1 is not None and run1.bundle_version == first_version
    assert run2 is not None and run2.bundle_version == second_version


async def test_the_ui_shows_bundle_versions_and_how_stale_the_snapshot_is(
    bucket: Bucket, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from spinner.db.models import DagModel, DagRun

    bucket.write(f"{PARTITION}/ads/a.py", "A = 1\n")
    pushed = await bucket.push()
    async with sessions() as s, s.begin():
        s.add(DagModel(dag_id="shown", partition=PARTITION, fileloc=f"{PARTITION}/ads/a.py", tier=1, schedule=None,
                       is_paused=False, is_active=True, owner="ads", description="", tags=[], bundle_version=pushed.version))  # fmt: skip
        s.add(DagRun(dag_id="shown", run_id="r1", run_type="manual", state="success", logical_date=utcnow(),
                     conf={}, partition=PARTITION, created_at=utcnow(), bundle_version="0ldversion00000"))  # fmt: skip
    settings = DagSyncSettings(
        home=tmp_path / "home", port=0, dags_bucket=bucket.location.bucket, dags_prefix=bucket.location.prefix,
        s3_endpoint_url=bucket.moto.endpoint, sync_interval=0.2,
    )  # fmt: skip
    stop = asyncio.Event()
    ready: list[str] = []
    dagsync = asyncio.create_task(serve_dagsync(settings, stop, ready=ready.append))
    try:
        await wait_for(lambda: ready, 30, "dagsync ready")
        async with (
            service_channel(ready[0], settings.identities) as channel,
            grpc.aio.insecure_channel("127.0.0.1:1") as logs,
        ):
            gw = Gateway(sessions=sessions, logs_channel=logs, clock=utcnow, tracer=TracerProvider().get_tracer("t"),
                         dagsync_channel=channel)  # fmt: skip
            auth = Authenticator(sessions=sessions, secret_key="test-secret", clock=utcnow, cache_seconds=0)
            token = await add_user(sessions, "admin", [db_auth.ADMIN_ROLE], "admin-password")
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(gw, auth, clock=utcnow)), base_url="http://gw",
                headers={"authorization": f"Bearer {token}"},
            ) as c:  # fmt: skip
                page = (await c.get("/")).text
                assert f"DAG bundle <code>{pushed.version}</code>" in page and "checked" in page
                assert f"<td><code>{pushed.version}</code></td>" in page  # the DAG's bundle column
                assert "<code>0ldversion00000</code>" in (await c.get("/dags/shown")).text  # the run's version
                api = (await c.get("/api/v1/dags/shown/runs")).json()
                assert api["runs"][0]["bundle_version"] == "0ldversion00000"
                bucket.moto.stop()
                try:

                    async def stale() -> bool:
                        return "stale for" in (await c.get("/")).text

                    await wait_for(stale, 20, "the page says the snapshot is stale")
                    assert "unreachable" in (await c.get("/")).text
                    snap = current_snapshot(settings.snapshot_root)
                    assert snap is not None and snap.version == pushed.version
                finally:
                    bucket.moto.start()
            await gw.aclose()
    finally:
        stop.set()
        await dagsync
