"""Task logs benchmark: time to first line and lines per second of a long log from each source.

    python bench/logs.py [--lines 100000] [--repeat 1] [--sources local,pod,s3,elasticsearch]
                         [--grow-rate 20000] [--profile DIR] [--json]

For each source a log of --lines realistic task-log lines is stored the way Spinner stores it
(the runner's readiness and task section markers, Python logging lines, a traceback now and
then, some non-ASCII), then the real logs service (services/logs/__main__.py `serve`) is started
in a process of its own, configured with only the store it should answer from, and asked over
gRPC:

- local: the file under the service's home and its `.complete` marker (standalone mode);
- pod: the Kubernetes API test double (tests/fakes/kubernetes.py) runs a pod whose container
  ("task") prints the lines and then stays running, so the log is live; the service reads it
  through kubernetes-asyncio. Also a growing log: a pod that prints the lines at --grow-rate
  lines/s while it is followed (delivered lines/s and the delay from a line's write to the
  client having it);
- s3: the archive and its completion marker on moto's S3 server over HTTP (tests/fakes/s3.py);
- elasticsearch: one document per line shipped by `LogShipper` (spinner/logship.py) to the
  Elasticsearch test double (tests/fakes/elasticsearch.py) with the end document, then refreshed.

Figures per source: time to first line of `Read` (offset 0) and of `Follow` (offset 0), and
lines per second of a `Follow` from offset 0 until the log is complete (for the live pod: until
every line has come, as it never completes). Every follow is checked: the lines must come back
whole, in order, with their sections, without a gap or a repeat, all from the wanted source;
the benchmark stops with an error otherwise. With --repeat the printed figures are p50s.

The test doubles and moto run in threads of this process (as in the tests), the logs service in
a child process, so the service has a core of its own on a two-core machine.

With --json the last line is one JSON object keyed by source.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from spinner.grpcserver import channel
from spinner.identity import load_identity

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from services.logs.__main__ import serve
from spinner.bundles import S3Location, s3_client
from spinner.config import LogsSettings
from spinner.kube import pod_name
from spinner.logpaths import complete_marker, local_log_path
from spinner.tasklog import (
    READINESS_PASSED,
    SECTION_START,
    ArchiveMarker,
    LogId,
    SectionTracker,
    archive_key,
    level_of,
    marker_key,
)
from spinner.v1 import common_pb2, logs_pb2, logs_pb2_grpc

SOURCES = ("local", "pod", "s3", "elasticsearch")
NAMESPACE = "spinner"
BUCKET = "spinner-bench-logs"
INDEX_PATTERN = "spinner-logs-%Y.%m.%d"
FOLLOW_TIMEOUT = 600.0
IDLE_FOLLOW_S = 5.0  # how long a caught-up follower of the live pod's log stays (the service's CPU is measured)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def p50(values: Sequence[float]) -> float:
    return round(statistics.median(values), 4)


# --- the log ------------------------------------------------------------------------------------


def task_log(n: int, seed: int = 6) -> list[str]:
    """`n` lines as the runner writes them: its readiness section, then a task's Python logging."""
    rnd = random.Random(seed)
    head = [
        f"{SECTION_START}readiness",
        "[2026-11-30T05:21:50.101234Z] host spinner-worker-3, pid 4242, try 1",
        "[2026-11-30T05:21:50.203456Z] DAG snapshot v20261130-052101-9f3c2a present",
        "[2026-11-30T05:21:50.204567Z] DAG file spinner_tier_1_0/etl/orders.py present",
        "[2026-11-30T05:21:50.312345Z] executor at 10.0.3.17:50052 reachable; try 1 is running",
        READINESS_PASSED,
        f"{SECTION_START}task",
    ]
    files = ["orders.py:57", "orders.py:88", "warehouse.py:212", "s3.py:140", "http.py:31"]
    words = ["orders", "customers", "línea", "payments", "refunds", "Straße", "inventory", "events"]
    lines = head[:n]
    second = 0.0
    while len(lines) < n:
        second += rnd.uniform(0.0, 0.01)
        stamp = f"[2026-11-30 05:22:{int(second) % 60:02d},{int(second * 1000) % 1000:03d}]"
        roll = rnd.random()
        table = rnd.choice(words)
        if roll < 0.002 and n - len(lines) >= 5:
            lines += [
                f"{stamp} {{warehouse.py:220}} ERROR - load of {table} failed, retrying",
                "Traceback (most recent call last):",
                '  File "/opt/spinner/dags/etl/warehouse.py", line 214, in load',
                "    cursor.execute(statement, rows)",
                f"psycopg.errors.DeadlockDetected: deadlock detected on relation {table}_{rnd.randrange(99)}",
            ]
            continue
        level = "WARNING" if roll < 0.03 else "DEBUG" if roll < 0.2 else "INFO"
        rows = rnd.randrange(1, 100_000)
        text = (
            f"batch {len(lines)}: read {rows} rows of {table} from s3://lake/raw/{table}/part-{rnd.randrange(9999):05d}"
            f".parquet in {rnd.uniform(0.01, 3):.3f} s ({rows * 212 / 1e6:.1f} MB)"
        )
        lines.append(f"{stamp} {{{rnd.choice(files)}}} {level} - {text}")
    return lines[:n]


def sections(lines: Sequence[str]) -> list[str]:
    tracker = SectionTracker()
    return [tracker.feed(line) for line in lines]


@dataclass(frozen=True)
class Expected:
    lines: list[str]
    sections: list[str]

    def check(self, got: list[logs_pb2.LogLine], what: str, *, whole: bool = True) -> None:
        """Lines [0, len(got)) in order, no gap or repeat; all of them when `whole`. Exits loudly otherwise."""
        if whole and len(got) != len(self.lines):
            self._fail(what, f"{len(got)} lines came back, the log has {len(self.lines)}", got)
        for i, line in enumerate(got):
            if line.offset != i:
                self._fail(what, f"line {i} came with offset {line.offset} (a gap or a repeat)", got)
            if i >= len(self.lines) or line.text != self.lines[i]:
                want = self.lines[i] if i < len(self.lines) else "(past the end)"
                self._fail(what, f"line {i} is {line.text!r}, expected {want!r}", got)
            if line.section != self.sections[i]:
                self._fail(what, f"line {i} is in section {line.section!r}, expected {self.sections[i]!r}", got)

    @staticmethod
    def _fail(what: str, why: str, got: list[logs_pb2.LogLine]) -> None:
        tail = [(line.offset, line.text[:40]) for line in got[-3:]]
        raise SystemExit(f"{what}: WRONG LOG: {why} (last lines received: {tail})")


# --- the logs service, in a process of its own -------------------------------------------------------


def _service_main(settings: LogsSettings, conn: Connection) -> None:
    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await serve(settings, stop, ready=conn.send)

    asyncio.run(run())


def py_spy() -> str | None:
    """py-spy beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@dataclass(frozen=True)
class Service:
    stub: Any  # logs_pb2_grpc.LogsServiceStub
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the service process has used so far (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def logs_service(settings: LogsSettings, profile: Path | None = None) -> AsyncIterator[Service]:
    """The real logs service in a child process; with `profile`, py-spy samples it into that file (folded stacks)."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=_service_main, args=(settings, theirs), name="logs-service", daemon=True)
    process.start()
    assert process.pid is not None
    spy: subprocess.Popen[bytes] | None = None
    try:
        if not await asyncio.to_thread(ours.poll, 60):
            raise SystemExit("the logs service did not start within 60 s")
        address = ours.recv()
        if profile is not None:
            spy = subprocess.Popen(
                [
                    str(py_spy()),
                    "record",
                    "--pid",
                    str(process.pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "-o",
                    str(profile),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(1)  # py-spy attaches
        async with channel(address, identity=load_identity(settings.identities, "gateway")) as ch:
            yield Service(logs_pb2_grpc.LogsServiceStub(ch), process.pid)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes the profile when interrupted
            await asyncio.to_thread(spy.wait, 30)
            say(f"profile of the logs service: {profile}")
        process.terminate()
        await asyncio.to_thread(process.join, 30)
        if process.is_alive():
            process.kill()


def grpc_key(key: LogId) -> common_pb2.TaskTryKey:
    return common_pb2.TaskTryKey(dag_id=key.dag_id, run_id=key.run_id, task_id=key.task_id, try_number=key.try_number)


# --- measurements ------------------------------------------------------------------------------------


async def read_first(stub: Any, key: LogId, expected: Expected, source: str) -> float:
    """Seconds until Read from offset 0 answered (with the first page of lines)."""
    started = time.perf_counter()
    reply = await stub.Read(logs_pb2.ReadLogRequest(key=grpc_key(key), from_offset=0), timeout=120)
    took = time.perf_counter() - started
    if reply.source != source:
        raise SystemExit(f"{source}: Read was answered by {reply.source!r} ({reply.fallback_reason})")
    if not reply.lines:
        raise SystemExit(f"{source}: Read from offset 0 returned no line")
    expected.check(list(reply.lines), f"{source} Read", whole=False)
    return took


@dataclass
class Followed:
    first_line_s: float
    total_s: float
    lines: list[logs_pb2.LogLine]
    received_at: list[float]  # time.time() when each line came, for the growing log's delay
    responses: int
    idle_cpu_s: float = 0.0  # the service's CPU while the follower, caught up, waited `idle` seconds


async def follow(
    stub: Any,
    key: LogId,
    source: str,
    *,
    until_lines: int | None = None,
    idle: float = 0.0,
    service: Service | None = None,
) -> Followed:
    """Follow from offset 0 until complete, or until `until_lines` lines came (a live log never completes).

    With `idle`, the follower stays `idle` seconds more once it has every line, as a person leaves
    a running task's log open, and the service's CPU meanwhile is measured (lines that come then
    are kept: the check finds them).
    """
    lines: list[logs_pb2.LogLine] = []
    received: list[float] = []
    first: float | None = None
    responses = 0
    idle_from: float | None = None
    started = time.perf_counter()
    call = stub.Follow(logs_pb2.FollowLogRequest(key=grpc_key(key), from_offset=0), timeout=FOLLOW_TIMEOUT)
    complete = False
    deadline = asyncio.timeout(None)
    try:
        async with deadline:
            async for reply in call:
                responses += 1
                if reply.source not in ("", source):
                    raise SystemExit(f"{source}: Follow was answered by {reply.source!r} ({reply.fallback_reason})")
                if reply.lines:
                    if first is None:
                        first = time.perf_counter() - started
                    lines.extend(reply.lines)
                    received.extend([time.time()] * len(reply.lines))
                if reply.complete:
                    complete = True
                    break
                if until_lines is not None and len(lines) >= until_lines:
                    if idle <= 0 or service is None:
                        break
                    if idle_from is None:
                        total = time.perf_counter() - started
                        idle_from = service.cpu_seconds()
                        deadline.reschedule(asyncio.get_running_loop().time() + idle)
    except TimeoutError:
        if not deadline.expired():
            raise
    finally:
        call.cancel()
    if idle_from is None:
        total = time.perf_counter() - started
    if until_lines is None and not complete:
        raise SystemExit(f"{source}: Follow ended without a complete answer after {len(lines)} lines")
    idle_cpu = service.cpu_seconds() - idle_from if service is not None and idle_from is not None else 0.0
    return Followed(first or total, total, lines, received, responses, idle_cpu)


async def measure(
    service: Service, key: LogId, expected: Expected, source: str, *, live: bool = False
) -> dict[str, float | int]:
    read_s = await read_first(service.stub, key, expected, source)
    cpu = service.cpu_seconds()
    done = await follow(
        service.stub,
        key,
        source,
        until_lines=len(expected.lines) if live else None,
        idle=IDLE_FOLLOW_S if live else 0.0,
        service=service,
    )
    cpu = service.cpu_seconds() - cpu - done.idle_cpu_s
    expected.check(done.lines, f"{source} Follow")
    idle = {"idle_follower_cpu_percent": round(100 * done.idle_cpu_s / IDLE_FOLLOW_S, 1)} if live else {}
    return idle | {
        "read_first_line_s": round(read_s, 4),
        "follow_first_line_s": round(done.first_line_s, 4),
        "follow_whole_s": round(done.total_s, 3),
        "lines_per_s": round(len(done.lines) / done.total_s),
        "follow_service_cpu_s": round(cpu, 2),
        "responses": done.responses,
    }


async def cold_read(service: Service, key: LogId, expected: Expected, source: str) -> float:
    """The service's first Read: it connects to the store (and S3 downloads and parses the archive)."""
    took = await read_first(service.stub, key, expected, source)
    say(f"{source}: first Read of the service (connecting to the store): {took * 1000:.0f} ms")
    return round(took, 4)


def summarize(runs: list[dict[str, float | int]], cold_read_s: float | None = None) -> dict[str, Any]:
    keys = [k for k in runs[0] if k != "responses"]
    out: dict[str, Any] = {k: p50([float(r[k]) for r in runs]) for k in keys}
    if cold_read_s is not None:
        out["cold_read_first_line_s"] = cold_read_s
    for k in ("lines_per_s", "delivered_lines_per_s"):
        if k in out:
            out[k] = round(out[k])
    out["responses"] = runs[0]["responses"]
    out["runs"] = runs
    return out


@dataclass(frozen=True)
class Options:
    repeat: int
    grow_rate: float
    profile_dir: Path | None

    def profile(self, source: str) -> Path | None:
        return self.profile_dir / f"{source}.folded" if self.profile_dir else None


# --- sources -----------------------------------------------------------------------------------------


def base_settings(work: Path, **kwargs: Any) -> LogsSettings:
    # Constructed here and handed to the child: the SPINNER_ environment of whoever runs the bench is not read
    # for the stores (every store field is given), only for what is left at its default.
    return LogsSettings(home=work / "home", port=0, log_level="WARNING", telemetry_exporter="none", **kwargs)


async def bench_local(work: Path, expected: Expected, opts: Options) -> dict[str, Any]:
    settings = base_settings(work, source="local")
    key = LogId(dag_id="etl", task_id="load_orders", run_id="scheduled__2026-11-30T05:00:00+00:00", try_number=1)
    path = local_log_path(settings.log_dir, key.dag_id, key.run_id, key.task_id, key.try_number)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(expected.lines) + "\n", encoding="utf-8")
    complete_marker(path).touch()
    async with logs_service(settings, opts.profile("local")) as service:
        cold = await cold_read(service, key, expected, "local")
        runs = []
        for i in range(opts.repeat):
            runs.append(await measure(service, key, expected, "local"))
            say(f"local: run {i + 1}: {runs[-1]}")
    return summarize(runs, cold)


async def bench_s3(work: Path, expected: Expected, opts: Options) -> dict[str, Any]:
    from tests.fakes.s3 import Moto, free_port

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ.pop("AWS_PROFILE", None)
    moto = Moto(free_port())
    moto.start()
    try:
        location = S3Location(bucket=BUCKET, prefix="logs", endpoint_url=moto.endpoint)
        key = LogId(dag_id="etl", task_id="load_orders", run_id="scheduled__2026-11-30T05:00:00+00:00", try_number=1)
        content = ("\n".join(expected.lines) + "\n").encode()
        log_key = archive_key(location.prefix, key.dag_id, key.run_id, key.task_id, key.try_number)
        async with s3_client(location) as client:
            await client.create_bucket(Bucket=BUCKET)
            await client.put_object(Bucket=BUCKET, Key=log_key, Body=content)
            await client.put_object(Bucket=BUCKET, Key=marker_key(log_key), Body=ArchiveMarker.of(content).to_json())
        # No pod (no kubeconfig, not in a cluster) and no Elasticsearch: only the archive can answer.
        settings = base_settings(
            work, source="remote", logs_bucket=BUCKET, logs_prefix="logs", s3_endpoint_url=moto.endpoint, es_hosts=[]
        )
        async with logs_service(settings, opts.profile("s3")) as service:
            cold = await cold_read(service, key, expected, "s3")
            runs = []
            for i in range(opts.repeat):
                runs.append(await measure(service, key, expected, "s3"))
                say(f"s3: run {i + 1}: {runs[-1]}")
        result = summarize(runs, cold)
        result["archive_bytes"] = len(content)
        return result
    finally:
        moto.stop()


async def bench_elasticsearch(work: Path, expected: Expected, opts: Options) -> dict[str, Any]:
    from elasticsearch import AsyncElasticsearch

    from spinner.logship import LogShipper, install_index_template
    from tests.fakes.elasticsearch import FakeElasticsearch

    key = LogId(dag_id="etl", task_id="load_orders", run_id="scheduled__2026-11-30T05:00:00+00:00", try_number=1)
    with FakeElasticsearch(refresh_interval=None) as fake:
        async with AsyncElasticsearch(fake.url, max_retries=0, request_timeout=60) as client:
            await install_index_template(client, INDEX_PATTERN)
            started = time.perf_counter()
            tracker = SectionTracker()
            # As the runner's pump does (spinner/runner/logstream.py): every line, then "end" one past the last.
            async with LogShipper(
                client, key, index_pattern=INDEX_PATTERN, max_buffered=len(expected.lines) + 1, drain_timeout=600
            ) as shipper:
                for offset, text in enumerate(expected.lines):
                    section = tracker.feed(text) or "readiness"
                    shipper.put(text, section=section, level=level_of(text), offset=offset)
                shipper.put("", section="end", offset=len(expected.lines))
            if shipper.stats.shipped != len(expected.lines) + 1:
                raise SystemExit(f"elasticsearch: shipped {shipper.stats.shipped} documents: {shipper.stats}")
            await client.indices.refresh(index="spinner-logs-*")
            say(f"elasticsearch: {shipper.stats.shipped} documents shipped in {time.perf_counter() - started:.1f} s")
        # No archive, no pod: only Elasticsearch can answer.
        settings = base_settings(
            work, source="remote", logs_bucket="", es_hosts=[fake.url], es_index_pattern=INDEX_PATTERN
        )
        async with logs_service(settings, opts.profile("elasticsearch")) as service:
            cold = await cold_read(service, key, expected, "elasticsearch")
            runs = []
            for i in range(opts.repeat):
                runs.append(await measure(service, key, expected, "elasticsearch"))
                say(f"elasticsearch: run {i + 1}: {runs[-1]}")
    return summarize(runs, cold)


LIVE_POD = (
    "import sys, time; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read()); sys.stdout.flush(); time.sleep(3600)"
)

# Writes the lines at `rate` a second in 50 bursts a second and notes when each burst was written.
GROWING_POD = """
import sys, time
src, rate, stamps = sys.argv[1], float(sys.argv[2]), sys.argv[3]
lines = open(src, 'rb').read().splitlines(keepends=True)
burst = max(1, int(rate / 50))
out = sys.stdout.buffer
t0 = time.monotonic()
with open(stamps, 'w') as st:
    for i in range(0, len(lines), burst):
        wait = t0 + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        out.write(b''.join(lines[i:i + burst]))
        out.flush()
        st.write(f'{i} {min(len(lines), i + burst)} {time.time()}\\n')
        st.flush()
time.sleep(3600)
"""


async def bench_pod(work: Path, expected: Expected, opts: Options) -> dict[str, Any]:
    from kubernetes_asyncio import client, config

    from tests.fakes.kubernetes import FakeKubernetes

    log_file = work / "pod-log.txt"
    log_file.write_text("\n".join(expected.lines) + "\n", encoding="utf-8")
    with FakeKubernetes(work / "k8s", namespaces={NAMESPACE}) as fake:
        kubeconfig = fake.write_kubeconfig(work / "kubeconfig")
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            v1: Any = client.CoreV1Api(api)  # pods as plain dicts, as the executor sends them

            async def make_pod(key: LogId, command: list[str]) -> str:
                name = pod_name(key)
                body = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": name, "labels": {"spinner/dag-id": key.dag_id}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "task", "image": "spinner-runner", "command": command}],
                    },
                }
                await v1.create_namespaced_pod(NAMESPACE, body)
                return name

            # No archive and no Elasticsearch: only the pod can answer.
            settings = base_settings(
                work,
                source="remote",
                logs_bucket="",
                es_hosts=[],
                k8s_kubeconfig=str(kubeconfig),
                k8s_namespace=NAMESPACE,
            )
            async with logs_service(settings, opts.profile("pod")) as service:
                live_runs: list[dict[str, float | int]] = []
                grow_runs: list[dict[str, float | int]] = []
                for i in range(opts.repeat):
                    key = LogId(
                        dag_id="etl", task_id="load_orders", run_id="scheduled__2026-11-30", try_number=2 * i + 1
                    )
                    name = await make_pod(key, [sys.executable, "-c", LIVE_POD, str(log_file)])
                    await wait_pod_log(v1, name, expected.lines[-1])
                    if i == 0:
                        cold = await cold_read(service, key, expected, "pod")
                    live_runs.append(await measure(service, key, expected, "pod", live=True))
                    say(f"pod (live, whole log printed): run {i + 1}: {live_runs[-1]}")
                    await v1.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)

                    key = LogId(
                        dag_id="etl", task_id="load_orders", run_id="scheduled__2026-11-30", try_number=2 * i + 2
                    )
                    grow_runs.append(
                        await growing(service.stub, v1, make_pod, key, expected, log_file, work, opts.grow_rate)
                    )
                    say(f"pod (growing at {opts.grow_rate:.0f} lines/s): run {i + 1}: {grow_runs[-1]}")
                    await v1.delete_namespaced_pod(pod_name(key), NAMESPACE, grace_period_seconds=0)
    result = summarize(live_runs, cold)
    result["growing"] = summarize(grow_runs)
    result["growing"]["write_rate"] = opts.grow_rate
    return result


async def wait_pod_log(v1: Any, name: str, last_line: str) -> None:
    """Until the pod's log holds its last line (the container has printed everything)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # pending, container creating: 400 until it runs
            tail = await v1.read_namespaced_pod_log(name, NAMESPACE, container="task", tail_lines=1)
            if str(tail).rstrip("\n") == last_line:
                return
        await asyncio.sleep(0.1)
    raise SystemExit(f"pod {name} did not print its log within 120 s")


async def growing(
    stub: Any, v1: Any, make_pod: Any, key: LogId, expected: Expected, log_file: Path, work: Path, rate: float
) -> dict[str, float | int]:
    """Follow a pod's log from before its first line while it writes `rate` lines a second."""
    stamps = work / f"stamps-{key.try_number}.txt"
    follower = asyncio.create_task(follow(stub, key, "pod", until_lines=len(expected.lines)))
    await make_pod(key, [sys.executable, "-c", GROWING_POD, str(log_file), str(rate), str(stamps)])
    done = await follower
    expected.check(done.lines, "pod (growing) Follow")
    written: list[float] = [0.0] * len(expected.lines)
    deadline = time.monotonic() + 10
    while True:  # the pod notes a burst just after writing it: the follower may have it first
        rows = [row.split() for row in stamps.read_text().split("\n")[:-1]]  # whole rows only
        if (rows and int(rows[-1][1]) == len(expected.lines)) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    for start, end, at in rows:
        written[int(start) : int(end)] = [float(at)] * (int(end) - int(start))
    if 0.0 in written:
        raise SystemExit(f"pod (growing): the pod noted the writing of {len(rows)} bursts only")
    delays = sorted(got - put for got, put in zip(done.received_at, written, strict=True))
    first_write, last_write = min(written), max(written)
    return {
        "written_in_s": round(last_write - first_write, 3),
        "delivered_lines_per_s": round(len(done.lines) / max(1e-9, done.received_at[-1] - first_write)),
        "delay_p50_s": round(delays[len(delays) // 2], 4),
        "delay_p99_s": round(delays[int(len(delays) * 0.99)], 4),
        "delay_max_s": round(delays[-1], 4),
        "last_line_after_last_write_s": round(done.received_at[-1] - last_write, 4),
        "responses": done.responses,
    }


# --- main --------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    wanted = [s for s in args.sources.split(",") if s]
    unknown = set(wanted) - set(SOURCES)
    if unknown:
        raise SystemExit(f"unknown sources {sorted(unknown)}; choose from {', '.join(SOURCES)}")
    lines = task_log(args.lines)
    expected = Expected(lines, sections(lines))
    size = sum(len(line.encode()) + 1 for line in lines)
    say(f"log of {len(lines)} lines, {size / 1e6:.1f} MB")
    opts = Options(args.repeat, args.grow_rate, args.profile)
    if opts.profile_dir is not None:
        if py_spy() is None:
            raise SystemExit("--profile needs py-spy (pip install py-spy)")
        opts.profile_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server: no line per request
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="spinner-bench-logs-") as tmp:
        work = Path(tmp)
        for source in wanted:
            started = time.perf_counter()
            if source == "local":
                result[source] = await bench_local(work, expected, opts)
            elif source == "s3":
                result[source] = await bench_s3(work, expected, opts)
            elif source == "elasticsearch":
                result[source] = await bench_elasticsearch(work, expected, opts)
            else:
                result[source] = await bench_pod(work, expected, opts)
            result[source]["lines"] = len(lines)
            say(f"{source} done in {time.perf_counter() - started:.1f} s")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=100_000, help="lines of the log (at least 8)")
    p.add_argument("--repeat", type=int, default=1, help="runs per source; the printed figures are p50s")
    p.add_argument("--sources", default=",".join(SOURCES), help="comma-separated: " + ", ".join(SOURCES))
    p.add_argument("--grow-rate", type=float, default=20_000, help="lines/s the growing pod writes")
    p.add_argument("--profile", type=Path, help="sample the logs service with py-spy into DIR/<source>.folded")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line at the end")
    args = p.parse_args()
    if args.lines < 8 or args.repeat < 1 or args.grow_rate <= 0:
        p.error("--lines must be at least 8, --repeat at least 1, --grow-rate above 0")
    result = asyncio.run(main_async(args))
    for source, r in result.items():
        print(
            f"{source}: {r['lines']} lines, time to first line: Read {r['read_first_line_s'] * 1000:.0f} ms, "
            f"Follow {r['follow_first_line_s'] * 1000:.0f} ms; Follow of the whole log {r['follow_whole_s']} s, "
            f"{r['lines_per_s']} lines/s, {r['follow_service_cpu_s']} s of the service's CPU"
        )
        print(
            f"{source}: the service's first Read (connecting to the store): {r['cold_read_first_line_s'] * 1000:.0f} ms"
        )
        if "idle_follower_cpu_percent" in r:
            print(
                f"{source}: a follower that has every line of the live log and waits for more costs the service "
                f"{r['idle_follower_cpu_percent']}% of a core"
            )
        if "growing" in r:
            g = r["growing"]
            print(
                f"{source} (growing, written at {g['write_rate']:.0f} lines/s over {g['written_in_s']} s): delivered "
                f"{g['delivered_lines_per_s']} lines/s; write -> client delay p50 {g['delay_p50_s'] * 1000:.0f} ms, "
                f"p99 {g['delay_p99_s'] * 1000:.0f} ms, max {g['delay_max_s'] * 1000:.0f} ms"
            )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
