"""The Kubernetes backend checks every pod_override against its own policy before it asks the API server for a
pod (spinner/podpolicy.py): a refused one raises PodSpecError (a LaunchRefused, so the try fails with the
message) and no pod is ever created; an allowed one reaches the pod as written. Through the real
kubernetes_asyncio client and the Kubernetes API test double (tests/fakes/kubernetes.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from services.executor.backends.base import LaunchRefused, LaunchSpec, TryKey
from services.executor.backends.kubernetes import KubernetesBackend, KubernetesSettings
from services.executor.pod_spec import PodSettings, PodSpecError
from spinner.kube import pod_name
from spinner.podpolicy import PodPolicy
from tests.fakes.kubernetes import FakeKubernetes

KEY = TryKey("etl", "manual__1", "load", 1)


async def _no_exit(key: TryKey, code: int, reason: str, pid: int | None = None) -> None:
    return None


def _backend(kubeconfig: Path, policy: PodPolicy) -> KubernetesBackend:
    settings = KubernetesSettings(
        pod=PodSettings(namespace="spinner", executor_name="exec-policy", policy=policy), kubeconfig=str(kubeconfig)
    )
    return KubernetesBackend(_no_exit, settings)


def _spec(override: dict[str, Any]) -> LaunchSpec:
    return LaunchSpec(key=KEY, argv=[sys.executable, "-c", "pass"], partition="spinner_tier_1_0",
                      executor_config={"pod_override": override})  # fmt: skip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}},
            "executor_config pod_override spec.volumes[0].hostPath is not allowed",
        ),
        (
            {
                "spec": {
                    "initContainers": [{"name": "i", "image": "busybox:1.36", "securityContext": {"privileged": True}}]
                }
            },
            "executor_config pod_override spec.initContainers[0].securityContext.privileged is not allowed",
        ),
        (
            {"spec": {"containers": [{"image": "attacker/miner:latest"}]}},
            "executor_config pod_override spec.containers[0].image is not allowed: 'attacker/miner:latest'",
        ),
    ],
)
async def test_a_refused_override_is_refused_before_any_pod_is_asked_for(
    fake_kubernetes: FakeKubernetes, kubeconfig: Path, override: dict[str, Any], message: str
) -> None:
    # Extra containers of busybox are allowed here: the privileged one is refused for its securityContext.
    backend = _backend(kubeconfig, PodPolicy(allowed_images=("busybox:1.36",), allow_extra_containers=True))
    await backend.start()
    try:
        with pytest.raises(PodSpecError, match=re.escape(message)) as refused:
            await backend.launch(_spec(override))
        assert isinstance(refused.value, LaunchRefused)  # the executor fails the try with this message, no retry
        assert not backend.is_running(KEY)
    finally:
        await backend.aclose()
    assert [p for m, p in fake_kubernetes.requests if m == "POST"] == []
    assert fake_kubernetes.pods() == []


async def test_an_allowed_override_reaches_the_pod(fake_kubernetes: FakeKubernetes, kubeconfig: Path) -> None:
    backend = _backend(kubeconfig, PodPolicy())
    await backend.start()
    try:
        assert await backend.launch(_spec({
            "metadata": {"labels": {"team": "etl"}},
            "spec": {"nodeSelector": {"kubernetes.io/arch": "amd64"},
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                     "volumes": [{"name": "scratch", "emptyDir": {}}],
                     "containers": [{"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}]},
        }))  # fmt: skip
        pod = fake_kubernetes.pod("spinner", pod_name(KEY))
        assert pod is not None
        assert pod["metadata"]["labels"]["team"] == "etl"
        assert pod["spec"]["volumes"] == [{"name": "scratch", "emptyDir": {}}]
        assert pod["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    finally:
        await backend.aclose()
