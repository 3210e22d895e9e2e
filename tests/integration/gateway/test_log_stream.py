"""Following a task log over Server-Sent Events and the public gRPC API, through the gateway and the logs service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import TracerProvider

from gateway.app import create_app
from gateway.engine import Gateway
from gateway.server import SpinnerApiServicer
from spinner.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc, logs_pb2, logs_pb2_grpc

from .conftest import NOW, Site, add_user

STREAM = "/api/v1/dags/dag_0/runs/manual__1/tasks/{task}/logs/stream"


@dataclass
class Event:
    name: str
    id: str
    data: Any


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of a text/event-stream response as they arrive (comment lines skipped)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield Event(fields.get("event", "message"), fields.get("id", ""), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free port (ASGITransport would hold a stream's body until it ends)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)
    assert check(), what


async def test_a_running_log_is_followed_line_by_line_until_it_is_complete(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "one\ntwo\n", done=False)
    got: list[Event] = []
    async with (
        served(site.app) as url,
        httpx.AsyncClient(base_url=url, headers=site.client.headers, timeout=30) as client,
        client.stream("GET", STREAM.format(task="extract")) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        got.append(await anext(stream))
        assert [line["text"] for line in got[0].data["lines"]] == ["one", "two"]
        # Lines written after the stream began arrive on it, then the end of the try.
        site.write_log("dag_0", "manual__1", "extract", 1, "one\ntwo\nthree\nfour\n", done=False)
        async for event in stream:
            got.append(event)
            if any(line["text"] == "four" for line in event.data["lines"]):
                break
        site.write_log("dag_0", "manual__1", "extract", 1, "one\ntwo\nthree\nfour\nfive\n", done=True)
        got.extend([event async for event in stream])
    lines = [line for event in got for line in event.data["lines"]]
    assert [line["text"] for line in lines] == ["one", "two", "three", "four", "five"]
    assert [line["offset"] for line in lines] == [0, 1, 2, 3, 4]  # consecutive, none repeated
    assert [e.data["complete"] for e in got] == [False] * (len(got) - 1) + [True]  # the stream ends after complete
    assert {e.data["source"] for e in got} == {"local"} and all(e.name == "message" for e in got)
    assert [e.id for e in got] == [str(e.data["next_offset"]) for e in got] and got[-1].id == "5"


async def test_a_reconnecting_browser_goes_on_from_its_last_event_id(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "a\nb\nc\nd\n", done=True)
    r = await site.client.get(STREAM.format(task="extract"), params={"offset": 1}, headers={"last-event-id": "3"})
    assert r.status_code == 200
    body = [line for line in r.text.splitlines() if line.startswith("data: ")]
    chunks = [json.loads(line.removeprefix("data: ")) for line in body]
    assert [line["text"] for c in chunks for line in c["lines"]] == ["d"] and chunks[-1]["complete"] is True
    r = await site.client.get(STREAM.format(task="extract"), params={"offset": 1})
    chunks = [json.loads(line.removeprefix("data: ")) for line in r.text.splitlines() if line.startswith("data: ")]
    assert [line["text"] for c in chunks for line in c["lines"]] == ["b", "c", "d"]


async def test_the_stream_carries_sections_and_readiness(site: Site) -> None:
    text = "::spinner-section::readiness\nDAG file d0.py is not in snapshot v1\n::spinner-readiness::failed\n"
    site.write_log("dag_0", "manual__1", "load", 1, text, done=True)
    r = await site.client.get(STREAM.format(task="load"))
    chunks = [json.loads(line.removeprefix("data: ")) for line in r.text.splitlines() if line.startswith("data: ")]
    assert chunks[-1]["readiness"] == "failed" and chunks[-1]["fallback_reason"] == ""
    assert [(line["text"], line["section"]) for c in chunks for line in c["lines"]][1] == (
        "DAG file d0.py is not in snapshot v1", "readiness",
    )  # fmt: skip


async def test_who_may_not_read_the_dag_gets_the_same_not_found_as_for_no_dag(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "secret\n", done=True)
    for client in (await site.user("nobody", []), site.client_for(None)):
        async with client:
            r = await client.get(STREAM.format(task="extract"))
            assert r.headers["content-type"] == "application/json" and "secret" not in r.text
            if client.headers.get("authorization"):
                assert r.status_code == 404
                assert r.json()["error"] == {"code": "not_found", "message": "DAG 'dag_0' not found"}
                assert (await client.get("/api/v1/dags/nope/runs/manual__1/tasks/extract/logs/stream")).json() == {
                    "error": {"code": "not_found", "message": "DAG 'nope' not found"}
                }
            else:
                assert r.status_code == 401


async def test_a_bad_try_or_offset_is_refused_before_any_stream(site: Site) -> None:
    r = await site.client.get(STREAM.format(task="extract"), params={"try_number": 5})
    assert r.status_code == 404 and "has no try 5" in r.json()["error"]["message"]
    r = await site.client.get(STREAM.format(task="extract"), params={"offset": -1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = await site.client.get(STREAM.format(task="nope"))
    assert r.status_code == 404 and "task 'nope'" in r.json()["error"]["message"]


# --- the gateway's end of the Follow call, against a logs service that counts the calls it has open ---


class EndlessLogs(logs_pb2_grpc.LogsServiceServicer):
    """Answers every Follow with one line, then nothing more: the call ends only when the gateway cancels it."""

    def __init__(self) -> None:
        self.open = 0
        self.ended = 0

    async def Follow(
        self, request: logs_pb2.FollowLogRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[logs_pb2.ReadLogResponse]:
        self.open += 1
        try:
            line = logs_pb2.LogLine(offset=request.from_offset, text="working", section="task")
            yield logs_pb2.ReadLogResponse(lines=[line], next_offset=request.from_offset + 1, source="pod")
            await asyncio.Event().wait()
        finally:
            self.open -= 1
            self.ended += 1


@dataclass
class Endless:
    logs: EndlessLogs
    gateway: Gateway
    url: str
    headers: httpx.Headers


@pytest.fixture
async def endless(site: Site) -> AsyncIterator[Endless]:
    """The gateway's app behind uvicorn, its logs service an EndlessLogs on a real gRPC server."""
    logs = EndlessLogs()
    server = grpc.aio.server()
    logs_pb2_grpc.add_LogsServiceServicer_to_server(logs, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    gw = Gateway(
        sessions=site.sessions, logs_channel=channel, clock=lambda: NOW, tracer=TracerProvider().get_tracer("t")
    )
    try:
        async with served(create_app(gw, site.auth, clock=lambda: NOW)) as url:
            yield Endless(logs, gw, url, site.client.headers)
    finally:
        await channel.close()
        await server.stop(None)


async def test_a_reader_who_leaves_ends_the_follow_in_the_logs_service(endless: Endless) -> None:
    async with (
        httpx.AsyncClient(base_url=endless.url, headers=endless.headers, timeout=30) as client,
        client.stream("GET", STREAM.format(task="extract")) as response,
    ):
        first = await anext(events(response))
        assert first.data["lines"] == [{"offset": 0, "text": "working", "section": "task"}]
        assert endless.logs.open == 1
    # The browser tab closed: the gateway cancels its call, the logs service stops reading for it.
    await until(lambda: endless.logs.open == 0 and endless.logs.ended == 1, "the Follow call was not cancelled")


async def test_a_stopping_gateway_ends_the_streams_it_serves(endless: Endless) -> None:
    async with (
        httpx.AsyncClient(base_url=endless.url, headers=endless.headers, timeout=30) as client,
        client.stream("GET", STREAM.format(task="extract")) as response,
    ):
        stream = events(response)
        assert (await anext(stream)).data["complete"] is False
        endless.gateway.close_log_streams()
        async with asyncio.timeout(10):
            rest = [event async for event in stream]  # the response ends (a browser would reconnect elsewhere)
    assert rest == []
    await until(lambda: endless.logs.open == 0, "the Follow call was not cancelled")


# --- the same over the public gRPC API (SpinnerApi.GetTaskLog and FollowTaskLog) ---


@asynccontextmanager
async def grpc_api(gateway: Gateway, site: Site) -> AsyncIterator[gateway_pb2_grpc.SpinnerApiStub]:
    server = grpc.aio.server()
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(SpinnerApiServicer(gateway, site.auth), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield gateway_pb2_grpc.SpinnerApiStub(channel)
    finally:
        await server.stop(None)


def _request(task: str, offset: int = 0, try_number: int = 0) -> gateway_pb2.GetTaskLogRequest:
    key = common_pb2.TaskTryKey(dag_id="dag_0", run_id="manual__1", task_id=task, try_number=try_number)
    return gateway_pb2.GetTaskLogRequest(key=key, from_offset=offset)


def _metadata(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    return (("authorization", headers["authorization"]),)


async def test_a_running_log_is_read_and_followed_over_grpc(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "one\ntwo\n", done=False)
    md = _metadata(site.client.headers)
    async with grpc_api(site.gateway, site) as stub:
        chunk = await stub.GetTaskLog(_request("extract", offset=1), metadata=md)
        assert (list(chunk.lines), chunk.next_offset, chunk.complete) == (["two"], 2, False)
        assert (chunk.source, chunk.try_number) == ("local", 1)

        call = stub.FollowTaskLog(_request("extract"), metadata=md)
        got = [await call.read()]
        assert list(got[0].lines) == ["one", "two"]
        site.write_log("dag_0", "manual__1", "extract", 1, "one\ntwo\nthree\n", done=False)
        while "three" not in got[-1].lines:  # lines written after the follow began arrive on it
            got.append(await asyncio.wait_for(call.read(), 10))
        site.write_log("dag_0", "manual__1", "extract", 1, "one\ntwo\nthree\nfour\n", done=True)
        while (reply := await asyncio.wait_for(call.read(), 10)) is not grpc.aio.EOF:
            got.append(reply)
        assert await call.code() == grpc.StatusCode.OK
    assert [line for reply in got for line in reply.lines] == ["one", "two", "three", "four"]  # none lost or repeated
    assert [reply.complete for reply in got] == [False] * (len(got) - 1) + [True]  # it ends after the complete one
    assert got[-1].next_offset == 4 and {reply.try_number for reply in got} == {1}


async def test_grpc_log_calls_refuse_what_the_user_may_not_read_and_bad_requests(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "secret\n", done=True)
    nobody = (("authorization", f"Bearer {await add_user(site.sessions, 'nobody', [])}"),)
    async with grpc_api(site.gateway, site) as stub:
        for read in (stub.GetTaskLog, lambda r, metadata: stub.FollowTaskLog(r, metadata=metadata).read()):
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await read(_request("extract"), metadata=nobody)
            assert (e.value.code(), e.value.details()) == (grpc.StatusCode.NOT_FOUND, "DAG 'dag_0' not found")
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await read(_request("extract"), metadata=())
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await read(_request("extract", offset=-1), metadata=_metadata(site.client.headers))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await read(_request("extract", try_number=5), metadata=_metadata(site.client.headers))
            assert e.value.code() == grpc.StatusCode.NOT_FOUND and "has no try 5" in (e.value.details() or "")


async def test_a_grpc_client_who_leaves_ends_the_follow_in_the_logs_service(endless: Endless, site: Site) -> None:
    async with grpc_api(endless.gateway, site) as stub:
        call = stub.FollowTaskLog(_request("extract"), metadata=_metadata(endless.headers))
        first = await call.read()
        assert (list(first.lines), first.source, first.complete) == (["working"], "pod", False)
        assert endless.logs.open == 1
        call.cancel()  # the client program stopped following
        await until(lambda: endless.logs.open == 0 and endless.logs.ended == 1, "the Follow call was not cancelled")
