"""One trace follows a trigger: gateway -> scheduler -> (the run's tasks queued) -> executor."""

from __future__ import annotations

import asyncio

import httpx

from gateway.__main__ import serve as serve_gateway
from spinner.clock import utcnow
from spinner.config import GatewaySettings
from spinner.db import auth as db_auth

from .conftest import PARTITION, Stack


async def test_trigger_is_one_trace_across_the_services(stack: Stack) -> None:
    stack.write_dag(
        f"{PARTITION}/team/traced.py",
        "from spinner import DAG, BashOperator, Tier\n"
        "with DAG(dag_id='traced', tier=Tier.TIER1) as dag:\n"
        "    BashOperator(task_id='a', bash_command='echo a') >> BashOperator(task_id='b', bash_command='echo b')\n",
    )
    await stack.publish()
    await stack.wait_dag("traced")
    async with stack.sessions() as s, s.begin():  # the gateway lets only an authenticated user trigger
        await db_auth.ensure_defaults(s)
        user = await db_auth.create_user(s, "tracer", password=None, roles=[db_auth.ADMIN_ROLE], now=utcnow())
        token = await db_auth.create_token(s, user.id, "test", utcnow())
    stop = asyncio.Event()
    urls: list[str] = []
    settings = GatewaySettings(home=stack.home, database_url=stack.db_url, http_port=0, grpc_port=0)
    gateway = asyncio.create_task(serve_gateway(settings, stop, ready=urls.append, telemetry=stack.telemetry))
    try:
        await stack.wait_for(lambda: urls, 20, "gateway ready")
        async with httpx.AsyncClient(base_url=urls[0], headers={"authorization": f"Bearer {token}"}) as client:
            r = await client.post("/api/v1/dags/traced/runs", json={"conf": {}})
            assert r.status_code == 201, r.text
            run_id = r.json()["run_id"]
        assert (await stack.wait_run("traced", run_id)).state == "success"
    finally:
        stop.set()
        await gateway

    spans = stack.spans.get_finished_spans()
    by_name: dict[str, list[int]] = {}
    for span in spans:
        assert span.context is not None
        by_name.setdefault(span.name, []).append(span.context.trace_id)
    (trace_id,) = set(by_name["gateway.trigger"])
    assert set(by_name["scheduler.trigger_dag_run"]) == {trace_id}
    # Both tasks were queued and submitted within the trigger's trace.
    assert by_name["scheduler.queue_task"].count(trace_id) == 2
    assert by_name["executor.submit"].count(trace_id) == 2
