"""A reschedule-mode sensor on the Kubernetes backend: each poke is a pod of its own (docs/adr/0006-sensor-reschedule.md).

The real scheduler and executor, kubernetes_asyncio and the Kubernetes API test double, whose pods
run as local processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.executor.backends.base import TryKey
from spinner.kube import pod_name
from tests.fakes.kubernetes import FakeKubernetes

from .conftest import PARTITION, Stack
from .test_kubernetes_executor import PodRecorder

pytestmark = pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner", k8s_pending_timeout=5)

SENSOR = """
from pathlib import Path
from spinner import DAG, PythonSensor, Tier


def third_poke() -> bool:
    pokes = Path("{counter}")
    n = int(pokes.read_text()) + 1 if pokes.exists() else 1
    pokes.write_text(str(n))
    return n >= 3


with DAG(dag_id="pod_pokes", tier=Tier.TIER1) as dag:
    PythonSensor(task_id="wait", python_callable=third_poke, mode="reschedule", poke_interval=0.5, timeout=120)
"""


async def test_each_poke_runs_in_its_own_pod_and_the_try_stays_one(
    stack: Stack, fake_kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    stack.write_dag(f"{PARTITION}/team/pod_pokes.py", SENSOR.format(counter=tmp_path / "pokes"))
    await stack.publish()
    await stack.wait_dag("pod_pokes")
    recorder = PodRecorder(fake_kubernetes)
    try:
        run_id = await stack.trigger("pod_pokes")
        run = await stack.wait_run("pod_pokes", run_id, timeout=120)
    finally:
        await recorder.stop()
    ti = (await stack.tis("pod_pokes", run_id))["wait"]
    assert run.state == "success", (ti.state, ti.error)
    assert (ti.try_number, ti.reschedule_count) == (1, 2), (ti.try_number, ti.reschedule_count)
    expected = {pod_name(TryKey("pod_pokes", run_id, "wait", 1, n)) for n in range(3)}
    sensor_pods = {name for name in recorder.seen if name.startswith("pod-pokes-wait")}
    assert sensor_pods == expected, (sorted(sensor_pods), sorted(expected))
    notes = {n: recorder.seen[n]["metadata"]["annotations"].get("spinner.io/reschedule") for n in sensor_pods}
    assert sorted(v or "0" for v in notes.values()) == ["0", "1", "2"], notes
