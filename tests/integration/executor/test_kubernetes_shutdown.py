"""An executor that stops while it is asking for a pod finishes asking: the launch is answered, not cut off.

Before, `KubernetesBackend.aclose` closed the API client under a pod creation in flight: the launch
raised, the executor counted the try as not launched although the API server went on to create its pod.
Through the real kubernetes_asyncio client and the Kubernetes API test double (tests/fakes/kubernetes.py),
whose pod creation is made slow."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from services.executor.backends.base import LaunchSpec, TryKey
from services.executor.backends.kubernetes import KubernetesBackend, KubernetesSettings
from services.executor.pod_spec import PodSettings
from spinner.kube import pod_name
from tests.fakes.kubernetes import FakeKubernetes

KEY = TryKey("etl", "manual__1", "load", 1)


async def _no_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
    return None


async def test_a_launch_in_flight_is_answered_before_the_backend_closes(
    fake_kubernetes: FakeKubernetes, kubeconfig: Path
) -> None:
    settings = KubernetesSettings(
        pod=PodSettings(namespace="spinner", executor_name="exec-stop"), kubeconfig=str(kubeconfig)
    )
    backend = KubernetesBackend(_no_exit, settings)
    await backend.start()
    fake_kubernetes.create_delay = 1.0
    spec = LaunchSpec(key=KEY, argv=[sys.executable, "-c", "pass"], partition="spinner_tier_1_0")
    launch = asyncio.create_task(backend.launch(spec))
    deadline = asyncio.get_running_loop().time() + 30
    while not any(method == "POST" for method, _ in fake_kubernetes.requests):
        assert asyncio.get_running_loop().time() < deadline, f"no pod creation asked for: {fake_kubernetes.requests}"
        await asyncio.sleep(0.02)
    await backend.aclose()  # the executor stops while the API server is still creating the pod
    assert launch.done(), "aclose returned before the launch in flight was answered"
    assert launch.result() is True  # launched: the try is the new executor's to adopt, not to launch again
    assert fake_kubernetes.pod("spinner", pod_name(KEY)) is not None
