"""Task logs end to end: the real scheduler, executor (Kubernetes backend on the API test double,
tests/fakes/kubernetes.py), task runner and logs service, with runners shipping to the
Elasticsearch test double (tests/fakes/elasticsearch.py) and archiving to moto's S3 server.

What a user sees: a running try's log live from its pod, the whole log from S3 once it ended,
Elasticsearch when either store cannot be read, every line once and in order across the switch,
and a task that runs to success while Elasticsearch is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import grpc
import pytest
from elasticsearch import AsyncElasticsearch

from services.logs.__main__ import serve as serve_logs
from spinner.config import LogsSettings
from spinner.kube import pod_name
from spinner.tasklog import READINESS_PASSED, ArchiveMarker, archive_key, marker_key
from spinner.v1 import common_pb2, logs_pb2, logs_pb2_grpc
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.kubernetes import FakeKubernetes
from tests.fakes.s3 import Moto
from tests.service_calls import service_channel

from .conftest import LOGS_BUCKET, PARTITION, Stack

pytestmark = pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner", log_stores=True)
HEADER = "import datetime as dt\nfrom spinner import DAG, BashOperator, Tier\n"
CHATTY = """
with DAG(dag_id="chatty", tier=Tier.TIER1) as dag:
    BashOperator(task_id="talk", bash_command="for i in $(seq 1 LINES); do echo line-$i; sleep PAUSE; done; echo oops >&2")
"""


@dataclass
class Logs:
    stub: logs_pb2_grpc.LogsServiceStub

    async def read(self, key: common_pb2.TaskTryKey, offset: int = 0) -> logs_pb2.ReadLogResponse:
        reply: logs_pb2.ReadLogResponse = await self.stub.Read(
            logs_pb2.ReadLogRequest(key=key, from_offset=offset), timeout=20
        )
        return reply

    async def follow(self, key: common_pb2.TaskTryKey, offset: int = 0) -> list[logs_pb2.ReadLogResponse]:
        chunks: list[logs_pb2.ReadLogResponse] = []
        async for chunk in self.stub.Follow(logs_pb2.FollowLogRequest(key=key, from_offset=offset), timeout=90):
            chunks.append(chunk)
        return chunks


@pytest.fixture
async def logs(
    tmp_path: Path, kubeconfig: Path, moto: Moto, fake_elasticsearch: FakeElasticsearch
) -> AsyncIterator[Logs]:
    settings = LogsSettings(
        home=tmp_path / "logs-home",
        port=0,
        source="remote",
        logs_bucket=LOGS_BUCKET,
        s3_endpoint_url=moto.endpoint,
        es_hosts=[fake_elasticsearch.url],
        k8s_kubeconfig=str(kubeconfig),
        k8s_namespace="spinner",
        follow_interval=0.2,
    )
    stop = asyncio.Event()
    address: list[str] = []
    service = asyncio.create_task(serve_logs(settings, stop, ready=address.append))
    while not address:
        assert not service.done(), "the logs service stopped at start"
        await asyncio.sleep(0.02)
    try:
        async with service_channel(address[0], settings.identities) as channel:
            yield Logs(logs_pb2_grpc.LogsServiceStub(channel))
    finally:
        stop.set()
        await service


async def _start(stack: Stack, source: str, dag_id: str = "chatty") -> str:
    stack.write_dag(f"{PARTITION}/team/{dag_id}.py", HEADER + source)
    await stack.publish()
    await stack.wait_dag(dag_id)
    return await stack.trigger(dag_id)


async def _running(stack: Stack, fake: FakeKubernetes, key: common_pb2.TaskTryKey) -> None:
    name = pod_name(key)

    def up() -> bool:
        return any(p["metadata"]["name"] == name and p["status"].get("phase") == "Running" for p in fake.pods())

    await stack.wait_for(up, 60, f"pod {name} running")


def _archive(moto: Moto, key: common_pb2.TaskTryKey) -> tuple[str, bytes]:
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    log_key = archive_key("logs", key.dag_id, key.run_id, key.task_id, key.try_number)
    return log_key, s3.get_object(Bucket=LOGS_BUCKET, Key=log_key)["Body"].read()


async def _read_when(
    logs: Logs, key: common_pb2.TaskTryKey, ready: Callable[[logs_pb2.ReadLogResponse], bool], timeout: float = 10
) -> logs_pb2.ReadLogResponse:
    """Reads until an answer is `ready` (Elasticsearch makes new documents searchable about a second later)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            reply = await logs.read(key)
            if ready(reply):
                return reply
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no answer as wanted within {timeout} s")
        await asyncio.sleep(0.2)


def _texts(chunks: list[logs_pb2.ReadLogResponse]) -> list[tuple[int, str]]:
    return [(line.offset, line.text) for chunk in chunks for line in chunk.lines]


async def test_following_a_running_task_switches_from_its_pod_to_the_archive_without_losing_a_line(
    stack: Stack, logs: Logs, fake_kubernetes: FakeKubernetes, moto: Moto, fake_elasticsearch: FakeElasticsearch
) -> None:
    run_id = await _start(stack, CHATTY.replace("LINES", "40").replace("PAUSE", "0.05"))
    key = common_pb2.TaskTryKey(dag_id="chatty", run_id=run_id, task_id="talk", try_number=1)
    await _running(stack, fake_kubernetes, key)
    chunks = await logs.follow(key)
    run = await stack.wait_run("chatty", run_id)
    assert run.state == "success"
    sources = [c.source for c in chunks if c.lines or c.complete]
    assert sources[0] == "pod" and sources[-1] == "s3"  # live from the pod, ended from the archive
    assert chunks[-1].complete and chunks[-1].readiness == "passed"
    lines = _texts(chunks)
    assert [offset for offset, _ in lines] == list(range(len(lines)))  # every line once, in order
    _, archived = _archive(moto, key)
    assert [text for _, text in lines] == archived.decode().splitlines()
    texts = [text for _, text in lines]
    assert [t for t in texts if t.startswith("line-")] == [f"line-{i}" for i in range(1, 41)]
    assert "oops" in texts  # stderr, and the output of the task's own subprocesses, are in the log
    assert READINESS_PASSED in texts
    sections = {line.text: line.section for chunk in chunks for line in chunk.lines}
    assert sections["line-1"] == "task" and sections[READINESS_PASSED] == "readiness"
    # Elasticsearch got the same lines, with offsets, and the end of the log.
    async with AsyncElasticsearch(fake_elasticsearch.url) as es:
        await es.indices.refresh(index="spinner-logs-*")
        found = await es.search(index="spinner-logs-*", query={"term": {"run_id": run_id}}, size=1000, sort=["offset"])
    docs = [h["_source"] for h in found["hits"]["hits"]]
    assert [(d["offset"], d["message"]) for d in docs if d["section"] != "end"] == lines
    assert docs[-1]["section"] == "end" and docs[-1]["offset"] == len(lines)


async def test_an_ended_try_reads_from_s3_then_falls_back_to_elasticsearch(
    stack: Stack, logs: Logs, moto: Moto, fake_elasticsearch: FakeElasticsearch, fake_kubernetes: FakeKubernetes
) -> None:
    run_id = await _start(stack, CHATTY.replace("LINES", "5").replace("PAUSE", "0"))
    await stack.wait_run("chatty", run_id)
    key = common_pb2.TaskTryKey(dag_id="chatty", run_id=run_id, task_id="talk", try_number=1)
    await stack.wait_for(lambda: not fake_kubernetes.pods(), 20, "the pod deleted")
    archived = await logs.read(key)
    assert archived.source == "s3" and archived.complete and not archived.fallback_reason
    assert archived.readiness == "passed"
    # Reading from an offset gives the rest only.
    tail = await logs.read(key, offset=len(archived.lines) - 2)
    assert [line.text for line in tail.lines] == [line.text for line in archived.lines[-2:]]
    # A damaged archive (the log no longer what its marker describes) is refused: Elasticsearch serves
    # the same lines. (A log already read and checked is served from the logs service's cache.)
    log_key, content = _archive(moto, key)
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    s3.put_object(Bucket=LOGS_BUCKET, Key=log_key, Body=content[:-10])
    s3.put_object(Bucket=LOGS_BUCKET, Key=marker_key(log_key), Body=ArchiveMarker.of(content + b"x\n").to_json())
    fallback = await _read_when(logs, key, lambda r: r.source == "elasticsearch")  # searchable within ~1 s
    assert fallback.complete
    assert "does not match its marker" in fallback.fallback_reason
    assert [(x.offset, x.text) for x in fallback.lines] == [(x.offset, x.text) for x in archived.lines]
    # No archive at all, and Elasticsearch down too: a clear "unavailable", naming each store.
    s3.delete_object(Bucket=LOGS_BUCKET, Key=marker_key(log_key))
    fake_elasticsearch.stop()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await logs.read(key)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "s3: no archived log" in (err.value.details() or "") and "pod:" in (err.value.details() or "")
    assert "elasticsearch: unreachable" in (err.value.details() or "")


async def test_a_running_try_whose_pod_cannot_be_read_is_served_from_elasticsearch(
    stack: Stack, logs: Logs, fake_kubernetes: FakeKubernetes
) -> None:
    run_id = await _start(stack, CHATTY.replace("LINES", "200").replace("PAUSE", "0.05"))
    key = common_pb2.TaskTryKey(dag_id="chatty", run_id=run_id, task_id="talk", try_number=1)
    await _running(stack, fake_kubernetes, key)
    live = await logs.read(key)
    while not any(x.text.startswith("line-") for x in live.lines):
        await asyncio.sleep(0.2)
        live = await logs.read(key)
    assert live.source == "pod" and not live.complete
    await asyncio.sleep(1.5)  # shipped, and searchable
    fake_kubernetes.stop()  # the API server is down: the pod keeps running, its log cannot be read
    try:
        fallback = await logs.read(key)
        assert fallback.source == "elasticsearch" and not fallback.complete
        assert "pod: Kubernetes API unreachable" in fallback.fallback_reason
        assert fallback.lines and fallback.lines[0].offset == 0
        assert [x.text for x in fallback.lines[: len(live.lines)]] == [x.text for x in live.lines]
    finally:
        fake_kubernetes.start()
    rest = await logs.follow(key, fallback.next_offset)  # on from where Elasticsearch left off
    assert rest[-1].source == "s3" and rest[-1].complete
    texts = [x.text for x in fallback.lines] + [text for _, text in _texts(rest)]
    assert [t for t in texts if t.startswith("line-")] == [f"line-{i}" for i in range(1, 201)]
    run = await stack.wait_run("chatty", run_id, timeout=90)
    assert run.state == "success"


async def test_the_task_runs_to_success_while_elasticsearch_is_down(
    stack: Stack, logs: Logs, fake_elasticsearch: FakeElasticsearch, fake_kubernetes: FakeKubernetes
) -> None:
    fake_elasticsearch.stop()
    run_id = await _start(stack, CHATTY.replace("LINES", "20").replace("PAUSE", "0"))
    run = await stack.wait_run("chatty", run_id, timeout=90)
    assert run.state == "success"
    key = common_pb2.TaskTryKey(dag_id="chatty", run_id=run_id, task_id="talk", try_number=1)
    chunks = await logs.follow(key)
    assert chunks[-1].source == "s3" and chunks[-1].complete  # the archive has every line
    lines = _texts(chunks)
    assert [offset for offset, _ in lines] == list(range(len(lines)))
    assert [t for _, t in lines if t.startswith("line-")] == [f"line-{i}" for i in range(1, 21)]


async def test_failed_readiness_is_reported_with_the_log(stack: Stack, logs: Logs) -> None:
    source = """
with DAG(dag_id="unready", tier=Tier.TIER1) as dag:
    BashOperator(task_id="needs", bash_command="true", executor_config={"requirements": "team/missing.txt"})
"""
    run_id = await _start(stack, source, "unready")
    run = await stack.wait_run("unready", run_id, timeout=90)
    assert run.state == "failed"
    ti = (await stack.tis("unready", run_id))["needs"]
    assert ti.error.startswith("Readiness check failed:") and "missing.txt" in ti.error  # the runner's reason
    key = common_pb2.TaskTryKey(dag_id="unready", run_id=run_id, task_id="needs", try_number=1)
    chunks = await logs.follow(key)
    assert chunks[-1].readiness == "failed" and chunks[-1].complete
    failing = [x for c in chunks for x in c.lines if "missing.txt" in x.text]
    assert failing and all(x.section == "readiness" for x in failing)
