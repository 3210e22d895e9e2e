"""Two instances of one mapped task at once in each backend: local processes, and pods on the Kubernetes
test double (tests/fakes/kubernetes.py) through the real kubernetes_asyncio client, where a restarted
executor adopts each by its map_index, and fails (on SQLite and MariaDB) the one whose pod is gone
(docs/adr/0007-dynamic-task-mapping.md)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.backends.base import LaunchSpec, TryKey
from services.executor.backends.kubernetes import KubernetesBackend, KubernetesSettings
from services.executor.backends.local import LocalProcessBackend
from services.executor.engine import Executor
from services.executor.pod_spec import PodSettings
from services.executor.tokens import TokenSigner
from spinner.db.models import DagRun, TaskInstance
from spinner.events import NullBus
from spinner.kube import pod_name
from spinner.logpaths import local_log_path
from tests.fakes.kubernetes import FakeKubernetes

# A task that says who it is, then runs until the test lets it end (or 60 s pass).
TASK = """
import os, pathlib, sys, time
print(f"instance {os.environ['WHO']} started", flush=True)
deadline = time.monotonic() + 60
while not pathlib.Path(sys.argv[1]).exists() and time.monotonic() < deadline:
    time.sleep(0.02)
print(f"instance {os.environ['WHO']} done", flush=True)
"""
KEYS = [TryKey("etl", "manual__1", "load", 1, map_index=i) for i in (0, 1)]


def spec(key: TryKey, release: Path, log_dir: Path | None = None) -> LaunchSpec:
    log_path = local_log_path(log_dir, key.dag_id, key.run_id, key.task_id, 1, key.map_index) if log_dir else None
    return LaunchSpec(key=key, argv=[sys.executable, "-c", TASK, str(release)], env={"WHO": str(key.map_index)},
                      log_path=log_path, partition="spinner_tier_1_0")  # fmt: skip


async def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_the_local_backend_runs_two_instances_of_one_task_at_once(tmp_path: Path) -> None:
    ended: dict[TryKey, int] = {}

    async def on_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
        ended[key] = code

    release = tmp_path / "release"
    backend = LocalProcessBackend(on_exit, keep_on_stop=False)  # its runners end with the test
    try:
        for key in KEYS:
            assert await backend.launch(spec(key, release, tmp_path))
        assert not await backend.launch(spec(KEYS[0], release, tmp_path))  # the same instance again: no second one
        logs = [local_log_path(tmp_path, "etl", "manual__1", "load", 1, k.map_index) for k in KEYS]
        await wait_for(lambda: all(p.exists() and "started" in p.read_text() for p in logs), "both started")
        assert sorted(backend.running(), key=lambda k: k.map_index) == KEYS  # both at once, each its own process
        release.touch()
        await wait_for(lambda: len(ended) == 2, "both ended")
    finally:
        await backend.aclose()
    assert ended == dict.fromkeys(KEYS, 0)
    assert [p.read_text().splitlines() for p in logs] == [
        ["instance 0 started", "instance 0 done"], ["instance 1 started", "instance 1 done"],
    ]  # fmt: skip


async def test_kubernetes_gives_each_instance_its_own_pod_and_a_restarted_executor_adopts_both(
    tmp_path: Path, fake_kubernetes: FakeKubernetes, kubeconfig: Path
) -> None:
    settings = KubernetesSettings(
        pod=PodSettings(namespace="spinner", executor_name="exec-k"), kubeconfig=str(kubeconfig), pending_timeout=30
    )
    release = tmp_path / "release"
    first_ended: list[TryKey] = []
    ended: dict[TryKey, int] = {}

    async def first_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
        first_ended.append(key)

    async def on_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
        ended[key] = code

    first = KubernetesBackend(first_exit, settings)
    assert await first.start() == []
    for key in KEYS:
        assert await first.launch(spec(key, release))
    names = [pod_name(k) for k in KEYS]
    assert names[0] != names[1] and all(f"-m{k.map_index}-" in n for k, n in zip(KEYS, names, strict=True))
    assert names[0] != pod_name(TryKey("etl", "manual__1", "load", 1))  # nor the unmapped task's name

    def running() -> bool:
        pods = [fake_kubernetes.pod("spinner", n) for n in names]
        return all(p is not None and (p.get("status") or {}).get("phase") == "Running" for p in pods)

    await wait_for(running, "both pods running")
    for key, name in zip(KEYS, names, strict=True):
        pod = fake_kubernetes.pod("spinner", name)
        assert pod is not None
        assert pod["metadata"]["labels"]["spinner.io/map-index"] == str(key.map_index)
        assert pod["metadata"]["labels"]["spinner.io/task-id"] == "load"
        assert pod["metadata"]["annotations"]["spinner.io/map-index"] == str(key.map_index)
    await first.aclose()  # the executor goes away; its pods keep running

    second = KubernetesBackend(on_exit, settings)
    try:
        adopted = await second.start()
        assert sorted(adopted, key=lambda k: k.map_index) == KEYS  # each instance, by its map_index
        assert all(second.is_running(k) for k in KEYS)
        release.touch()
        await wait_for(lambda: len(ended) == 2, "both pods ended")
        assert ended == dict.fromkeys(KEYS, 0)
        await wait_for(lambda: not fake_kubernetes.pods(), "both pods deleted")
    finally:
        await second.aclose()
    assert first_ended == []  # only the executor that watched them saw them end
    posts = [path for method, path in fake_kubernetes.requests if method == "POST"]
    assert len(posts) == 2  # one pod per instance, never a second


async def test_a_restarted_executor_keeps_the_instance_whose_pod_runs_and_fails_the_one_whose_pod_is_gone(
    tmp_path: Path, fake_kubernetes: FakeKubernetes, kubeconfig: Path, kube_api: Any,
    sessions: async_sessionmaker[AsyncSession],
) -> None:  # fmt: skip
    from kubernetes_asyncio import client

    now = dt.datetime.now(dt.UTC)
    async with sessions() as s, s.begin():
        s.add(DagRun(dag_id="etl", run_id="manual__1", run_type="manual", state="running", logical_date=now, conf={},
                     partition="spinner_tier_1_0", created_at=now))  # fmt: skip
        for key in KEYS:
            s.add(TaskInstance(dag_id="etl", run_id="manual__1", task_id="load", map_index=key.map_index,
                               partition="spinner_tier_1_0", state="running", try_number=1, max_tries=0,
                               start_date=now, executor="exec-k"))  # fmt: skip
    settings = KubernetesSettings(
        pod=PodSettings(namespace="spinner", executor_name="exec-k"), kubeconfig=str(kubeconfig), pending_timeout=30
    )
    release = tmp_path / "release"

    async def ignore(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
        return None

    before = KubernetesBackend(ignore, settings)
    await before.start()
    for key in KEYS:
        await before.launch(spec(key, release))
    await before.aclose()
    await client.CoreV1Api(kube_api).delete_namespaced_pod(pod_name(KEYS[1]), "spinner", grace_period_seconds=0)
    await wait_for(lambda: fake_kubernetes.pod("spinner", pod_name(KEYS[1])) is None, "instance 1's pod gone")

    executor = Executor(sessions=sessions, signer=TokenSigner("s"), bus=NullBus(), snapshot_root=tmp_path,
                        log_dir=tmp_path / "logs", name="exec-k", clock=lambda: dt.datetime.now(dt.UTC))  # fmt: skip
    executor.backend = KubernetesBackend(executor.process_exited, settings)
    try:
        assert await executor.adopt() == [KEYS[0]]
        async with sessions() as s:
            tis = {t.map_index: t for t in (await s.execute(select(TaskInstance))).scalars()}
        assert tis[0].state == "running"  # adopted: its runner's reports will reach this executor
        assert tis[1].state == "failed" and "found no pod" in tis[1].error
    finally:
        release.touch()
        await executor.backend.aclose()
        await executor.reports.aclose()
