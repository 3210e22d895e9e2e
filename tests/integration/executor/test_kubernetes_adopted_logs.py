"""A pod a restarted executor adopts has its output copied to the try's local log, as a pod the
executor launched itself does; a log the previous executor already closed is left as it was.

Found by bench.resilience (kill-executor and restart-standalone on the pod backend): the local log
of every pod that ended, or was still running, while the executor was away held only the line
"[spinner] task process exited with code 0", so standalone's logs service showed no output for it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from services.executor.backends.base import LaunchSpec, TryKey
from services.executor.backends.kubernetes import KubernetesBackend, KubernetesSettings
from services.executor.pod_spec import PodSettings
from spinner.logpaths import complete_marker, local_log_path
from tests.fakes.kubernetes import FakeKubernetes

TASK = "print('the task says hello', flush=True)"


async def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _ended_while_no_executor_watched(
    tmp_path: Path, fake: FakeKubernetes, kubeconfig: Path, key: TryKey
) -> tuple[KubernetesSettings, Path]:
    settings = KubernetesSettings(
        pod=PodSettings(namespace="spinner", executor_name="exec-logs"), kubeconfig=str(kubeconfig)
    )
    log_path = local_log_path(tmp_path / "logs", key.dag_id, key.run_id, key.task_id, key.try_number)

    async def first_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
        raise AssertionError("the first executor was stopped before the pod ended")

    first = KubernetesBackend(first_exit, settings)
    await first.start()
    spec = LaunchSpec(
        key=key, argv=[sys.executable, "-c", TASK], env={}, log_path=log_path, partition="spinner_tier_1_0"
    )
    assert await first.launch(spec)
    await first.aclose()  # the executor goes away before the pod ends; the pod runs on

    def succeeded() -> bool:
        return any((p.get("status") or {}).get("phase") == "Succeeded" for p in fake.pods())

    await wait_for(succeeded, "the pod ended")
    return settings, log_path


async def test_a_pod_that_ended_while_the_executor_was_away_has_its_output_in_the_local_log(
    tmp_path: Path, fake_kubernetes: FakeKubernetes, kubeconfig: Path
) -> None:
    key = TryKey("etl", "manual__1", "load", 1)
    settings, log_path = await _ended_while_no_executor_watched(tmp_path, fake_kubernetes, kubeconfig, key)
    ended: dict[TryKey, int] = {}

    async def on_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
        ended[key] = code

    def log_of(k: TryKey) -> Path:
        return local_log_path(tmp_path / "logs", k.dag_id, k.run_id, k.task_id, k.try_number, k.map_index)

    second = KubernetesBackend(on_exit, settings, log_path=log_of)
    try:
        await second.start()
        await wait_for(lambda: key in ended, "the adopted pod's end")
    finally:
        await second.aclose()
    assert ended == {key: 0}
    assert log_path.read_text().splitlines() == ["the task says hello"]


async def test_a_log_the_previous_executor_closed_is_not_copied_again(
    tmp_path: Path, fake_kubernetes: FakeKubernetes, kubeconfig: Path
) -> None:
    key = TryKey("etl", "manual__1", "load", 2)
    settings, log_path = await _ended_while_no_executor_watched(tmp_path, fake_kubernetes, kubeconfig, key)
    # As if the previous executor had copied the log and closed it, and stopped before deleting the pod.
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("the task says hello\n")
    complete_marker(log_path).touch()
    ended: list[TryKey] = []

    async def on_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
        ended.append(key)

    second = KubernetesBackend(on_exit, settings, log_path=lambda k: log_path)
    try:
        await second.start()
        await wait_for(lambda: bool(ended), "the adopted pod's end")
        await wait_for(lambda: not fake_kubernetes.pods(), "the pod deleted")
    finally:
        await second.aclose()
    assert log_path.read_text() == "the task says hello\n"
