"""The executor's Kubernetes backend end to end: the real scheduler and executor, kubernetes_asyncio,
and the Kubernetes API test double (tests/fakes/kubernetes.py), whose pods run as local processes."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from services.executor.backends.base import TryKey
from spinner.db.models import TaskInstanceHistory
from spinner.kube import pod_name
from tests.fakes.kubernetes import FakeKubernetes, Fault

from .conftest import PARTITION, Stack

pytestmark = pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner", k8s_pending_timeout=2)
EXAMPLES = Path(__file__).parents[3] / "examples" / "dags"
HEADER = "import datetime as dt\nfrom spinner import DAG, BashOperator, Tier\n"


class PodRecorder:
    """Every pod the fake has had while recording, as last seen."""

    def __init__(self, fake: FakeKubernetes) -> None:
        self.fake = fake
        self.seen: dict[str, dict[str, Any]] = {}
        self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            for pod in await asyncio.to_thread(self.fake.pods):
                self.seen[pod["metadata"]["name"]] = pod
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _run(stack: Stack, dag_id: str, source: str, timeout: float = 60) -> tuple[str, dict[str, Any]]:
    stack.write_dag(f"{PARTITION}/team/{dag_id}.py", HEADER + source)
    await stack.publish()
    await stack.wait_dag(dag_id)
    run_id = await stack.trigger(dag_id)
    await stack.wait_run(dag_id, run_id, timeout=timeout)
    return run_id, await stack.tis(dag_id, run_id)


async def test_tutorial_runs_in_pods_named_labelled_and_cleaned_up(
    stack: Stack, fake_kubernetes: FakeKubernetes
) -> None:
    shutil.copy(EXAMPLES / "spinner_tier_1_0" / "data" / "tutorial.py", stack.repo / PARTITION / "tutorial.py")
    await stack.publish()
    await stack.wait_dag("tutorial")
    recorder = PodRecorder(fake_kubernetes)
    run_id = await stack.trigger("tutorial")
    run = await stack.wait_run("tutorial", run_id, timeout=90)
    await stack.wait_for(lambda: not fake_kubernetes.pods(), 20, "every pod deleted")
    await recorder.stop()
    assert run.state == "success"
    tis = await stack.tis("tutorial", run_id)
    assert {t.state for t in tis.values()} == {"success"}
    names = {pod_name(TryKey("tutorial", run_id, t, 1)): t for t in tis}
    mine = {n for n, p in recorder.seen.items() if p["metadata"]["annotations"]["spinner.io/run-id"] == run_id}
    assert mine == set(names)  # exactly one pod per try, named from the try (the @daily run has its own)
    for name, task_id in names.items():
        pod = recorder.seen[name]
        labels = pod["metadata"]["labels"]
        assert pod["metadata"]["namespace"] == "spinner"
        assert labels["spinner.io/dag-id"] == "tutorial" and labels["spinner.io/task-id"] == task_id
        assert labels["spinner.io/partition"] == PARTITION and labels["spinner.io/try-number"] == "1"
        container = pod["spec"]["containers"][0]
        assert container["resources"]["requests"] == {"memory": "256Mi", "cpu": "100m"}
        assert pod["spec"]["serviceAccountName"] == "spinner-task"
    # The pods' output became the tries' logs.
    from spinner.logpaths import local_log_path

    log = local_log_path(stack.home / "logs", "tutorial", run_id, "templated", 1)
    assert "hello from tutorial" in log.read_text()


# The executor's policy is stricter than the scheduler's (the default, which allows configMap volumes): a
# file the parser accepted can still ask for a pod the executor refuses. Launch is the authority.
@pytest.mark.executor_settings(
    backend="kubernetes", k8s_namespace="spinner", k8s_pending_timeout=2, k8s_allowed_volume_kinds=["emptyDir"]
)
async def test_executor_config_sets_resources_and_a_refused_one_never_reaches_the_api(
    stack: Stack, fake_kubernetes: FakeKubernetes
) -> None:
    recorder = PodRecorder(fake_kubernetes)
    run_id, tis = await _run(
        stack,
        "resources",
        """
with DAG(dag_id="resources", tier=Tier.TIER1) as dag:
    BashOperator(task_id="big", bash_command="echo $REGION",
                 executor_config={"request_memory": "1Gi", "limit_memory": "2Gi", "request_cpu": "500m",
                                  "env": {"REGION": "eu-west-1"},
                                  "pod_override": {"metadata": {"labels": {"team": "ads"}},
                                                   "spec": {"nodeSelector": {"kubernetes.io/arch": "amd64"},
                                                            "volumes": [{"name": "scratch", "emptyDir": {}}]}}})
    BashOperator(task_id="greedy", bash_command="true", retries=3, executor_config={"limit_memory": "512Gi"})
    BashOperator(task_id="mounted", bash_command="true", retries=3, executor_config={"pod_override": {
        "spec": {"volumes": [{"name": "conf", "configMap": {"name": "team-config"}}]}}})
""",
    )
    await recorder.stop()
    assert tis["big"].state == "success"
    big = recorder.seen[pod_name(TryKey("resources", run_id, "big", 1))]
    assert big["spec"]["containers"][0]["resources"] == {
        "requests": {"memory": "1Gi", "cpu": "500m"},
        "limits": {"memory": "2Gi"},
    }
    assert big["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    assert big["metadata"]["labels"]["team"] == "ads"
    greedy = tis["greedy"]
    assert greedy.state == "failed" and greedy.try_number == 1  # refused for good: no retries
    assert "over the platform's maximum of 16Gi" in greedy.error
    mounted = tis["mounted"]
    assert mounted.state == "failed" and mounted.try_number == 1
    assert (
        "executor_config refused: executor_config pod_override spec.volumes[0].configMap is not allowed: "
        "the volume kinds allowed are emptyDir"
    ) in mounted.error
    for task_id in ("greedy", "mounted"):
        assert pod_name(TryKey("resources", run_id, task_id, 1)) not in recorder.seen
    posts = [path for method, path in fake_kubernetes.requests if method == "POST"]
    assert len(posts) == 1  # only big's pod was ever asked for


async def test_oomkilled_pod_fails_its_try_with_the_reason(stack: Stack, fake_kubernetes: FakeKubernetes) -> None:
    fake_kubernetes.fault_rule(Fault.OOM_KILLED, label_selector="spinner.io/task-id=hog", after=0.3)
    _, tis = await _run(
        stack,
        "hog",
        """
with DAG(dag_id="hog", tier=Tier.TIER1) as dag:
    BashOperator(task_id="hog", bash_command="sleep 30")
""",
    )
    assert tis["hog"].state == "failed"
    assert "OOMKilled" in tis["hog"].error


async def test_pod_stuck_pending_fails_its_try_with_the_reason(stack: Stack, fake_kubernetes: FakeKubernetes) -> None:
    fake_kubernetes.fault_rule(Fault.UNSCHEDULABLE, label_selector="spinner.io/task-id=stuck")
    _, tis = await _run(
        stack,
        "stuck",
        """
with DAG(dag_id="stuck", tier=Tier.TIER1) as dag:
    BashOperator(task_id="stuck", bash_command="true")
""",
    )
    assert tis["stuck"].state == "failed"
    assert "pending for more than 2 s" in tis["stuck"].error and "Unschedulable" in tis["stuck"].error
    await stack.wait_for(lambda: not fake_kubernetes.pods(), 20, "the stuck pod deleted")


async def test_image_pull_failure_is_reported(stack: Stack, fake_kubernetes: FakeKubernetes) -> None:
    fake_kubernetes.fault_rule(Fault.IMAGE_PULL, label_selector="spinner.io/task-id=pull")
    _, tis = await _run(
        stack,
        "pull",
        """
with DAG(dag_id="pull", tier=Tier.TIER1) as dag:
    BashOperator(task_id="pull", bash_command="true")
""",
    )
    assert tis["pull"].state == "failed" and "Image pull failed" in tis["pull"].error


async def test_a_watch_that_gets_410_recovers_without_missing_a_transition(
    stack: Stack, fake_kubernetes: FakeKubernetes
) -> None:
    stack.write_dag(
        f"{PARTITION}/team/chain.py",
        HEADER
        + """
with DAG(dag_id="chain", tier=Tier.TIER1) as dag:
    a = BashOperator(task_id="a", bash_command="sleep 0.5")
    b = BashOperator(task_id="b", bash_command="sleep 0.5")
    c = BashOperator(task_id="c", bash_command="sleep 0.5")
    a >> b >> c
""",
    )
    await stack.publish()
    await stack.wait_dag("chain")
    run_id = await stack.trigger("chain")

    async def expire_repeatedly() -> None:
        while True:
            await asyncio.sleep(0.4)
            await asyncio.to_thread(fake_kubernetes.expire_watch_window)

    expiring = asyncio.create_task(expire_repeatedly())
    try:
        run = await stack.wait_run("chain", run_id, timeout=60)
    finally:
        expiring.cancel()
    assert run.state == "success"
    async with stack.sessions() as s:
        from sqlalchemy import select

        history = (await s.execute(select(TaskInstanceHistory.task_id, TaskInstanceHistory.state))).all()
    assert sorted(history) == [("a", "success"), ("b", "success"), ("c", "success")]  # each once, none lost
    lists = [p for m, p in fake_kubernetes.requests if m == "GET" and p.startswith("/api/v1/namespaces/spinner/pods?")]
    relists = [p for p in lists if "watch=" not in p]
    assert len(relists) >= 2, lists  # the first list at start, then again after each 410


# No token_secret: the restarted executor signs with the key its first start kept in the home, so the
# adopted pod's runner (holding a token of the first) is heard (services/executor/tokens.py).
@pytest.mark.executor_settings(backend="kubernetes", k8s_namespace="spinner", k8s_pending_timeout=30, port="free")
async def test_a_restarted_executor_adopts_running_pods_and_fails_tries_whose_pods_are_gone(
    stack: Stack, fake_kubernetes: FakeKubernetes, kube_api: Any
) -> None:
    from kubernetes_asyncio import client

    recorder = PodRecorder(fake_kubernetes)
    stack.write_dag(
        f"{PARTITION}/team/adopt.py",
        HEADER
        + """
with DAG(dag_id="adopt", tier=Tier.TIER1) as dag:
    BashOperator(task_id="long", bash_command="sleep 4; echo finished")
    BashOperator(task_id="lost", bash_command="sleep 60")
""",
    )
    await stack.publish()
    await stack.wait_dag("adopt")
    run_id = await stack.trigger("adopt")

    async def both_running() -> bool:
        return set((await stack.states("adopt", run_id)).values()) == {"running"}

    await stack.wait_for(both_running, 30, "both tries running")
    await stack.stop_executor()  # the executor goes away mid-task; its pods keep running
    lost = pod_name(TryKey("adopt", run_id, "lost", 1))
    await client.CoreV1Api(kube_api).delete_namespaced_pod(lost, "spinner", grace_period_seconds=0)
    await stack.start_executor()
    run = await stack.wait_run("adopt", run_id, timeout=60)
    await recorder.stop()
    tis = await stack.tis("adopt", run_id)
    assert tis["long"].state == "success"  # adopted: its runner's report reached the new executor
    assert tis["lost"].state == "failed" and "found no pod" in tis["lost"].error
    assert run.state == "failed"
    mine = sorted(n for n, p in recorder.seen.items() if p["metadata"]["annotations"]["spinner.io/run-id"] == run_id)
    assert mine == sorted([pod_name(TryKey("adopt", run_id, "long", 1)), lost])  # one pod per try, never a second


def _wheel(folder: Path, module: str, source: str) -> str:
    """A minimal pure-Python wheel, so the test installs offline."""
    import zipfile

    name = f"{module}-1.0-py3-none-any.whl"
    info = f"{module}-1.0.dist-info"
    with zipfile.ZipFile(folder / name, "w") as whl:
        whl.writestr(f"{module}.py", source)
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")
    return name


async def test_requirements_are_installed_before_the_task_starts(stack: Stack, fake_kubernetes: FakeKubernetes) -> None:
    folder = stack.repo / PARTITION / "team"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = _wheel(folder, "spinner_hello_req", "GREETING = 'hello from a requirement'\n")
    (folder / "requirements.txt").write_text(f"--no-index\n./{wheel}\n")
    _, tis = await _run(
        stack,
        "reqs",
        f"""
from spinner import PythonOperator

def greet():
    import spinner_hello_req
    print(spinner_hello_req.GREETING)

with DAG(dag_id="reqs", tier=Tier.TIER1) as dag:
    PythonOperator(task_id="greet", python_callable=greet,
                   executor_config={{"requirements": "{PARTITION}/team/requirements.txt"}})
""",
    )
    assert tis["greet"].state == "success", tis["greet"].error
    await stack.wait_for(lambda: not fake_kubernetes.pods(), 20, "the pod ended and its log was kept")
    from spinner.logpaths import local_log_path

    log = local_log_path(stack.home / "logs", "reqs", tis["greet"].run_id, "greet", 1).read_text()
    readiness, _, task = log.partition("::spinner-section::task")
    assert "team/requirements.txt" in readiness and "hello from a requirement" in task  # installed, or cached
