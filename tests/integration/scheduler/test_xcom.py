"""XCom over the real scheduler and executor with real runner processes: values flow between tasks
through the executor's runner API, are cleared with a new try and by a clear, and bad values fail
the task with a clear message. The same on the Kubernetes backend (the test double's pods)."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from services.executor.tokens import TokenSigner
from spinner.db.models import XCom
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from tests.service_calls import service_channel

from .conftest import PARTITION, Stack

SECRET = "xcom-test-secret"

FLOW = """
import json
from spinner import DAG, BashOperator, PythonOperator, Tier, task


def push(ti):
    ti.xcom_push("extra", [1, 2])
    return {"n": 3, "name": "spinner"}


def pull_many(ti):
    return ti.xcom_pull(task_ids=["push", "quiet", "echo"]) + [ti.xcom_pull(task_ids="push", key="nope")]


with DAG(dag_id="xflow", tier=Tier.TIER1) as dag:
    p = PythonOperator(task_id="push", python_callable=push)
    e = BashOperator(task_id="echo", bash_command="echo first; echo last-line")
    q = BashOperator(task_id="quiet", bash_command="echo not pushed", do_xcom_push=False)
    t = BashOperator(
        task_id="templated",
        bash_command="echo \\"{{ ti.xcom_pull(task_ids='push')['n'] }}-{{ task_instance.xcom_pull(task_ids='push', key='extra') }}\\"",
    )
    m = PythonOperator(task_id="pull_many", python_callable=pull_many)
    [p, e, q] >> t >> m

    @task(multiple_outputs=True)
    def extract():
        return {"orders": [3, 4], "region": "eu"}

    @task(retries=1)
    def transform(orders, region, factor=10):
        return {"region": region, "total": sum(orders) * factor}

    @task
    def load(summary, ti=None):
        assert ti.task_id == "load"
        return f"{summary['region']}:{summary['total']}"

    @task.bash
    def report(line):
        return "echo report {{ run_id }} " + line

    data = extract()
    loaded = load(transform(data["orders"], data["region"]))
    report.override(task_id="report_it")(loaded)
    classic = BashOperator(task_id="classic", bash_command="echo classic {{ params.x }}", params={"x": 1})
    loaded >> classic
    PythonOperator(task_id="via_op_kwargs", python_callable=lambda value: value * 2, op_kwargs={"value": data["region"]})
"""


async def _setup(stack: Stack, name: str, source: str) -> str:
    stack.write_dag(f"{PARTITION}/team/{name}.py", source)
    await stack.publish()
    await stack.wait_dag(name, timeout=60)
    return await stack.trigger(name)


async def xcoms(stack: Stack, dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    async with stack.sessions() as s:
        rows = (await s.execute(select(XCom).where(XCom.dag_id == dag_id, XCom.run_id == run_id))).scalars().all()
    return {(r.task_id, r.key): json.loads(r.value) for r in rows}


async def _flow(stack: Stack) -> None:
    run_id = await _setup(stack, "xflow", FLOW)
    run = await stack.wait_run("xflow", run_id, timeout=90)
    tis = await stack.tis("xflow", run_id)
    assert run.state == "success", {t: (ti.state, ti.error) for t, ti in tis.items()}
    values = await xcoms(stack, "xflow", run_id)
    assert values[("push", "return_value")] == {"n": 3, "name": "spinner"}
    assert values[("push", "extra")] == [1, 2]
    assert values[("echo", "return_value")] == "last-line"
    assert ("quiet", "return_value") not in values
    assert values[("templated", "return_value")] == "3-[1, 2]"
    assert values[("pull_many", "return_value")] == [{"n": 3, "name": "spinner"}, None, "last-line", None]
    assert values[("extract", "orders")] == [3, 4] and values[("extract", "region")] == "eu"
    assert values[("transform", "return_value")] == {"region": "eu", "total": 70}
    assert values[("load", "return_value")] == "eu:70"
    assert values[("report_it", "return_value")] == f"report {run_id} eu:70"
    assert values[("via_op_kwargs", "return_value")] == "eueu"
    assert tis["classic"].state == "success"


async def test_values_flow_between_tasks_through_xcom(stack: Stack) -> None:
    await _flow(stack)


@pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner", k8s_pending_timeout=30)
async def test_values_flow_between_pods_on_the_kubernetes_backend(stack: Stack) -> None:
    await _flow(stack)


BAD = """
from spinner import DAG, PythonOperator, Tier


class Thing:
    pass


with DAG(dag_id="xbad", tier=Tier.TIER1) as dag:
    PythonOperator(task_id="too_big", python_callable=lambda: "x" * 70_000)
    PythonOperator(task_id="not_json", python_callable=lambda: {"thing": Thing()})
    PythonOperator(task_id="bad_key", python_callable=lambda ti: ti.xcom_push("", 1))
    PythonOperator(task_id="fine", python_callable=lambda: "x" * 60_000)
"""


async def test_too_large_and_non_json_values_fail_the_task_with_a_message(stack: Stack) -> None:
    run_id = await _setup(stack, "xbad", BAD)
    assert (await stack.wait_run("xbad", run_id, timeout=60)).state == "failed"
    tis = await stack.tis("xbad", run_id)
    assert tis["too_big"].state == "failed"
    assert "XCom 'return_value' is 70002 bytes of JSON, more than the limit of 65536 bytes" in tis["too_big"].error
    assert tis["not_json"].state == "failed"
    assert "XCom 'return_value' is not JSON-serializable (dict" in tis["not_json"].error, tis["not_json"].error
    assert "Thing" in tis["not_json"].error
    assert tis["bad_key"].state == "failed" and "an XCom key must be a non-empty string" in tis["bad_key"].error
    assert tis["fine"].state == "success"
    assert set(await xcoms(stack, "xbad", run_id)) == {("fine", "return_value")}


RETRY = """
import datetime as dt
from spinner import DAG, PythonOperator, Tier


def once_per_try(ti):
    ti.xcom_push(f"try_{ti.try_number}", ti.try_number)
    if ti.try_number == 1:
        raise RuntimeError("the first try fails")
    return ti.try_number


with DAG(dag_id="xretry", tier=Tier.TIER1) as dag:
    PythonOperator(task_id="flaky", python_callable=once_per_try, retries=1, retry_delay=dt.timedelta(0))
"""


async def call(stack: Stack, method: str, request: Any) -> Any:
    async with service_channel(stack.scheduler_address, stack.home / "identity") as ch:
        return await getattr(scheduler_pb2_grpc.SchedulerServiceStub(ch), method)(request, timeout=10)


async def test_a_new_try_and_a_clear_remove_the_xcoms_of_the_task_instance(stack: Stack) -> None:
    run_id = await _setup(stack, "xretry", RETRY)
    assert (await stack.wait_run("xretry", run_id, timeout=60)).state == "success"
    assert await xcoms(stack, "xretry", run_id) == {("flaky", "try_2"): 2, ("flaky", "return_value"): 2}
    # Paused, the cleared task instance waits, so what the clear itself removed can be seen.
    await call(stack, "SetPaused", scheduler_pb2.SetPausedRequest(dag_id="xretry", paused=True))
    ref = common_pb2.DagRunRef(dag_id="xretry", run_id=run_id)
    reply = await call(
        stack,
        "ClearTaskInstances",
        scheduler_pb2.ClearTaskInstancesRequest(selection=scheduler_pb2.TaskSelection(run=ref, task_ids=["flaky"])),
    )
    assert list(reply.task_ids) == ["flaky"]
    assert await xcoms(stack, "xretry", run_id) == {}
    await call(stack, "SetPaused", scheduler_pb2.SetPausedRequest(dag_id="xretry", paused=False))
    assert (await stack.wait_run("xretry", run_id, timeout=60)).state == "success"
    assert await xcoms(stack, "xretry", run_id) == {("flaky", "try_3"): 3, ("flaky", "return_value"): 3}


WAIT = """
import time
from spinner import DAG, PythonOperator, Tier

with DAG(dag_id="xwait", tier=Tier.TIER1) as dag:
    PythonOperator(task_id="a", python_callable=lambda: time.sleep(60))
    PythonOperator(task_id="b", python_callable=lambda: None)
"""


@pytest.mark.executor_settings(token_secret=SECRET, xcom_max_bytes=100)
async def test_the_runner_api_checks_the_token_the_try_and_the_size(stack: Stack) -> None:
    run_id = await _setup(stack, "xwait", WAIT)

    async def a_running() -> bool:
        return (await stack.states("xwait", run_id)).get("a") == "running"

    await stack.wait_for(a_running, 30, "task a runs")
    signer = TokenSigner(SECRET)

    def key(task_id: str, try_number: int = 1) -> common_pb2.TaskTryKey:
        return common_pb2.TaskTryKey(dag_id="xwait", run_id=run_id, task_id=task_id, try_number=try_number)

    def push(task_id: str, token: str, value: str = "1", try_number: int = 1) -> executor_pb2.RunnerPushXComRequest:
        return executor_pb2.RunnerPushXComRequest(
            key=key(task_id, try_number), token=token, xcom_key="k", value_json=value
        )

    token_a = signer.sign("xwait", run_id, "a", 1)
    async with grpc.aio.insecure_channel(stack.executor_address) as ch:
        stub = executor_pb2_grpc.RunnerServiceStub(ch)
        await stub.PushXCom(push("a", token_a), timeout=10)
        pulled = await stub.PullXCom(
            executor_pb2.RunnerPullXComRequest(key=key("a"), token=token_a, task_ids=["a", "b"], xcom_key="k"),
            timeout=10,
        )
        assert [(i.task_id, i.found, i.value_json) for i in pulled.items] == [("a", True, "1"), ("b", False, "")]
        refusals = {
            "a try cannot write another task's XComs": (push("b", token_a), grpc.StatusCode.PERMISSION_DENIED),
            "a wrong token": (push("a", "forged"), grpc.StatusCode.PERMISSION_DENIED),
            "an old try": (push("a", signer.sign("xwait", run_id, "a", 7), try_number=7),
                           grpc.StatusCode.FAILED_PRECONDITION),
            "too large": (push("a", token_a, json.dumps("y" * 200)), grpc.StatusCode.INVALID_ARGUMENT),
            "not JSON": (push("a", token_a, "{nope"), grpc.StatusCode.INVALID_ARGUMENT),
        }  # fmt: skip
        for what, (request, code) in refusals.items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.PushXCom(request, timeout=10)
            assert refused.value.code() == code, (what, refused.value.details())
        with pytest.raises(grpc.aio.AioRpcError) as too_large:
            await stub.PushXCom(push("a", token_a, json.dumps("y" * 200)), timeout=10)
        assert "XCom 'k' is 202 bytes of JSON, more than the limit of 100 bytes" in (too_large.value.details() or "")
    assert await xcoms(stack, "xwait", run_id) == {("a", "k"): 1}
    await call(
        stack,
        "MarkTaskInstances",
        scheduler_pb2.MarkTaskInstancesRequest(
            selection=scheduler_pb2.TaskSelection(run=common_pb2.DagRunRef(dag_id="xwait", run_id=run_id)),
            state="success",
        ),
    )
    await stack.wait_run("xwait", run_id, timeout=30)


PRIOR = """
from spinner import DAG, PythonOperator, Tier


def produce(params):
    return {"v": params["v"]} if params["push"] else None


def consume(ti):
    return [ti.xcom_pull(task_ids="produce"), ti.xcom_pull(task_ids="produce", include_prior_dates=True)]


with DAG(dag_id="xprior", tier=Tier.TIER1, params={"push": True, "v": 0}) as dag:
    PythonOperator(task_id="produce", python_callable=produce) >> PythonOperator(task_id="consume", python_callable=consume)

with DAG(dag_id="xother", tier=Tier.TIER1) as other:
    PythonOperator(task_id="read", python_callable=lambda ti: ti.xcom_pull(task_ids=["produce"], dag_id="xprior"))
"""


async def test_include_prior_dates_and_another_dags_xcom(stack: Stack) -> None:
    stack.write_dag(f"{PARTITION}/team/xprior.py", PRIOR)
    await stack.publish()
    await stack.wait_dag("xother", timeout=60)
    first = await stack.trigger("xprior", conf=json.dumps({"push": True, "v": 1}))
    assert (await stack.wait_run("xprior", first)).state == "success"
    second = await stack.trigger("xprior", conf=json.dumps({"push": False}))
    assert (await stack.wait_run("xprior", second)).state == "success"
    assert (await xcoms(stack, "xprior", first))[("consume", "return_value")] == [{"v": 1}, {"v": 1}]
    assert (await xcoms(stack, "xprior", second))[("consume", "return_value")] == [None, {"v": 1}]
    # Another DAG's XCom: of its run with this run's run_id.
    same = await stack.trigger("xother", run_id=first)
    assert (await stack.wait_run("xother", same)).state == "success"
    assert (await xcoms(stack, "xother", first))[("read", "return_value")] == [{"v": 1}]


FAN = """
from spinner import DAG, Tier, task

with DAG(dag_id="xfan", tier=Tier.TIER1, max_active_tasks=16) as dag:

    @task
    def part(n: int, ti=None) -> int:
        for k in range(5):
            ti.xcom_push(f"k{k}", [n, k])
        return n

    @task
    def join(parts: list, ti=None) -> list:
        ids = [f"part__{n}" if n else "part" for n in range(8)]
        return [parts, ti.xcom_pull(task_ids=ids, key="k4")]

    join([part(n) for n in range(8)])
"""


async def test_parallel_tasks_of_one_run_push_at_once(stack: Stack) -> None:
    run_id = await _setup(stack, "xfan", FAN)
    run = await stack.wait_run("xfan", run_id, timeout=90)
    tis = await stack.tis("xfan", run_id)
    assert run.state == "success", {t: (ti.state, ti.error) for t, ti in tis.items()}
    values = await xcoms(stack, "xfan", run_id)
    assert len(values) == 8 * 6 + 1
    assert values[("join", "return_value")] == [list(range(8)), [[n, 4] for n in range(8)]]


OUTSIDE = """
from spinner import task

@task
def orphan() -> int:
    return 1

orphan()
"""


async def test_a_task_function_called_outside_a_dag_is_an_import_error(stack: Stack) -> None:
    stack.write_dag(f"{PARTITION}/team/outside.py", OUTSIDE)
    await stack.publish()

    async def reported() -> str:
        return next((text for name, text in (await stack.import_errors()).items() if "outside.py" in name), "")

    await stack.wait_for(reported, 60, "the import error of outside.py")
    assert "task function 'orphan' was called outside a DAG" in await reported()
