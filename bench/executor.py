"""Executor benchmark: pod launches per second through the Kubernetes test double, and queued -> running
latency of the local backend.

    python bench/executor.py [--pods 200] [--tries 50] [--json]

- kubernetes: the real KubernetesBackend (kubernetes_asyncio) creates --pods pods on the Kubernetes
  API test double (tests/fakes/kubernetes.py, whose pods run `true` as local processes); prints
  creates per second and the time until the watch has seen every pod end.
- local: a real executor (local backend, SQLite) gets --tries queued tries over gRPC Submit, a few at
  a time as a scheduler hands them over; each runner process starts and reports Start; latency is
  the try's start_date minus its queued_at (what the scheduler's metric reports).

With --json the last line is one JSON object: {"kubernetes": {...}, "local": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spinner.grpcserver import channel
from spinner.identity import load_identity

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from services.executor.__main__ import serve as serve_executor
from services.executor.backends.base import LaunchSpec, TryKey
from services.executor.backends.kubernetes import KubernetesBackend, KubernetesSettings
from services.executor.pod_spec import PodSettings
from spinner.config import ExecutorSettings
from spinner.db.engine import create_engine, session_factory
from spinner.db.migrate import upgrade
from spinner.db.models import DagRun, TaskInstance
from spinner.fernet import new_key
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from tests.fakes.kubernetes import FakeKubernetes


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


async def bench_kubernetes(pods: int, work: Path) -> dict[str, Any]:
    ended: dict[TryKey, float] = {}

    async def on_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
        ended[key] = time.perf_counter()

    with FakeKubernetes(work / "k8s", namespaces={"spinner"}, pod_gc_delay=0.05) as fake:
        kubeconfig = fake.write_kubeconfig(work / "kubeconfig")
        backend = KubernetesBackend(
            on_exit, KubernetesSettings(pod=PodSettings(namespace="spinner"), kubeconfig=str(kubeconfig))
        )
        await backend.start()
        keys = [TryKey("bench", "run", f"t{i:05d}", 1) for i in range(pods)]
        slots = asyncio.Semaphore(32)

        async def launch(key: TryKey) -> None:
            async with slots:
                await backend.launch(LaunchSpec(key=key, argv=["true"], partition="spinner_tier_1_0"))

        started = time.perf_counter()
        for done, _ in enumerate(asyncio.as_completed([launch(k) for k in keys]), 1):
            await _
            if done % max(1, pods // 5) == 0:
                say(f"kubernetes: {done}/{pods} pods created")
        created = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while len(ended) < pods and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        all_ended = time.perf_counter() - started
        await backend.aclose()
    return {
        "pods": pods,
        "launches_per_s": round(pods / created, 1),
        "create_s": round(created, 2),
        "all_ended_seen_s": round(all_ended, 2),
        "ended_seen": len(ended),
    }


async def bench_local(tries: int, work: Path, verbose: bool = False) -> dict[str, Any]:
    home = work / "home"
    snapshot = home / "snapshots" / "versions" / "v1"
    (snapshot / "spinner_tier_1_0").mkdir(parents=True)
    (snapshot / "spinner_tier_1_0" / "bench.py").write_text(
        "from spinner import DAG, BashOperator, Tier\n"
        "with DAG(dag_id='bench', tier=Tier.TIER1) as dag:\n"
        f"    for i in range({tries}):\n"
        "        BashOperator(task_id=f't{i:04d}', bash_command='true')\n"
    )
    url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    now = dt.datetime.now(dt.UTC)
    async with sessions() as s, s.begin():
        s.add(DagRun(dag_id="bench", run_id="r", run_type="manual", state="running", logical_date=now,
                     conf={}, partition="spinner_tier_1_0", created_at=now))  # fmt: skip
        for i in range(tries):
            s.add(TaskInstance(dag_id="bench", run_id="r", task_id=f"t{i:04d}", partition="spinner_tier_1_0",
                               state="scheduled", try_number=0, max_tries=0))  # fmt: skip
    stop = asyncio.Event()
    ready: list[str] = []
    settings = ExecutorSettings(home=home, database_url=url, port=0, backend="local", fernet_key=new_key())
    server = asyncio.create_task(serve_executor(settings, stop, ready=ready.append))
    while not ready:
        await asyncio.sleep(0.05)
    latencies: list[float] = []
    async with channel(ready[0], identity=load_identity(settings.identities, "scheduler")) as ch:
        stub = executor_pb2_grpc.ExecutorServiceStub(ch)
        for i in range(tries):
            task_id = f"t{i:04d}"
            async with sessions() as s, s.begin():  # queued as a scheduler does, then handed over
                ti = await s.get(TaskInstance, ("bench", "r", task_id, -1))
                assert ti is not None
                ti.state, ti.try_number, ti.queued_at = "queued", 1, dt.datetime.now(dt.UTC)
            await stub.Submit(
                executor_pb2.SubmitRequest(
                    key=common_pb2.TaskTryKey(dag_id="bench", run_id="r", task_id=task_id, try_number=1),
                    partition="spinner_tier_1_0", bundle_version="v1", relative_fileloc="spinner_tier_1_0/bench.py",
                ),
                timeout=30,
            )  # fmt: skip
            await asyncio.sleep(0.05)  # a steady trickle, as a scheduler pass hands tries over
            if (i + 1) % max(1, tries // 5) == 0:
                say(f"local: {i + 1}/{tries} tries submitted")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with sessions() as s:
                rows = (
                    await s.execute(select(TaskInstance.queued_at, TaskInstance.start_date, TaskInstance.state))
                ).all()
            if all(r[2] in ("success", "failed") for r in rows):
                break
            await asyncio.sleep(0.2)
    latencies = [(r[1] - r[0]).total_seconds() for r in rows if r[0] and r[1]]
    if verbose:
        from spinner.logpaths import local_log_path

        for i, r in enumerate(rows[:5]):
            first = local_log_path(settings.log_dir, "bench", "r", f"t{i:04d}", 1).read_text().splitlines()[1][1:27]
            say(
                f"t{i:04d}: queued {r[0] and r[0].time()} runner's first line {first[11:]} started {r[1] and r[1].time()}"
            )
    failed = [r for r in rows if r[2] != "success"]
    if failed:
        from spinner.logpaths import local_log_path

        sample = local_log_path(settings.log_dir, "bench", "r", "t0000", 1)
        say(f"{len(failed)} tries did not succeed; the first one's log:\n" + sample.read_text()[-1500:])
    stop.set()
    await server
    await engine.dispose()
    return {
        "tries": tries,
        "started": len(latencies),
        "queued_to_running_s": {
            "p50": pct(latencies, 0.5),
            "p99": pct(latencies, 0.99),
            "mean": round(statistics.mean(latencies), 4) if latencies else None,
        },
    }


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pods", type=int, default=200)
    p.add_argument("--tries", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.add_argument("--verbose", action="store_true", help="print where the first tries' start time went")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="spinner-bench-executor-") as tmp:
        work = Path(tmp)
        result = {
            "kubernetes": await bench_kubernetes(args.pods, work),
            "local": await bench_local(args.tries, work, args.verbose),
        }
    k, loc = result["kubernetes"], result["local"]
    print(
        f"kubernetes (test double): {k['launches_per_s']} pod launches/s; every end seen after {k['all_ended_seen_s']} s"
    )
    q = loc["queued_to_running_s"]
    print(f"local backend: queued -> running p50 {q['p50'] * 1000:.0f} ms, p99 {q['p99'] * 1000:.0f} ms")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
