"""The Kubernetes test double, driven through the real kubernetes_asyncio client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.fakes.kubernetes import FakeKubernetes, Fault

NS = "spinner"


def pod_body(
    name: str,
    script: str = "print('hello')",
    *,
    labels: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "base",
                    "image": "spinner:1",
                    "command": [sys.executable, "-u", "-c"],
                    "args": [script],
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                }
            ],
        },
    }


async def wait_pod(
    v1: client.CoreV1Api, name: str, check: Callable[[client.V1Pod], bool], timeout: float = 10
) -> client.V1Pod:
    async with asyncio.timeout(timeout):
        while True:
            pod = await v1.read_namespaced_pod(name, NS)
            if check(pod):
                return pod
            await asyncio.sleep(0.02)


def phase_is(*phases: str) -> Callable[[client.V1Pod], bool]:
    return lambda pod: pod.status.phase in phases


async def collect(
    v1: client.CoreV1Api, until: Callable[[list[dict[str, Any]]], bool], **kw: Any
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(10), watch.Watch() as w:
        async for event in w.stream(v1.list_namespaced_pod, NS, **kw):
            events.append(event)
            if until(events):
                break
    return events


def reason(e: ApiException) -> str:
    return str(json.loads(e.body)["reason"])


@pytest.fixture
def v1(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


async def test_create_get_and_409_already_exists_with_a_status(v1: client.CoreV1Api) -> None:
    created = await v1.create_namespaced_pod(NS, pod_body("a", labels={"app": "x"}))
    assert created.metadata.uid and created.metadata.resource_version and created.status.phase == "Pending"
    assert created.spec.termination_grace_period_seconds == 30 and created.status.qos_class == "BestEffort"
    got = await v1.read_namespaced_pod("a", NS)
    assert got.metadata.uid == created.metadata.uid and got.metadata.labels == {"app": "x"}
    with pytest.raises(ApiException) as e:
        await v1.create_namespaced_pod(NS, pod_body("a"))
    assert e.value.status == 409
    status = json.loads(e.value.body)
    assert status["kind"] == "Status" and status["reason"] == "AlreadyExists"
    assert status["message"] == 'pods "a" already exists' and status["details"] == {"name": "a", "kind": "pods"}
    with pytest.raises(ApiException) as e:
        await v1.read_namespaced_pod("missing", NS)
    assert e.value.status == 404 and reason(e.value) == "NotFound"


async def test_invalid_pods_are_refused_with_422(v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes) -> None:
    bad_label = pod_body("b", labels={"run_id": "manual__2026-01-01T00:00:00+00:00"})
    with pytest.raises(ApiException) as e:
        await v1.create_namespaced_pod(NS, bad_label)
    assert e.value.status == 422 and reason(e.value) == "Invalid" and "metadata.labels" in e.value.body
    too_much = pod_body("c")
    too_much["spec"]["containers"][0]["resources"] = {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
    with pytest.raises(ApiException) as e:
        await v1.create_namespaced_pod(NS, too_much)
    assert e.value.status == 422 and "limit" in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:
        await v1.create_namespaced_pod(NS, pod_body("Not_A_Name"))
    assert e.value.status == 422
    assert await asyncio.to_thread(fake_kubernetes.pods) == []


async def test_list_with_label_selectors(v1: client.CoreV1Api) -> None:
    for name, labels in [("p1", {"tier": "1", "team": "ads"}), ("p2", {"tier": "2"}), ("p3", {"team": "ml"})]:
        await v1.create_namespaced_pod(NS, pod_body(name, "pass", labels=labels))

    async def names(**kw: Any) -> list[str]:
        listed = await v1.list_namespaced_pod(NS, **kw)
        return sorted(p.metadata.name for p in listed.items)

    assert await names() == ["p1", "p2", "p3"]
    assert await names(label_selector="tier=1") == ["p1"]
    assert await names(label_selector="tier==2") == ["p2"]
    assert await names(label_selector="tier!=1") == ["p2", "p3"]
    assert await names(label_selector="tier in (1, 2)") == ["p1", "p2"]
    assert await names(label_selector="team notin (ads)") == ["p2", "p3"]
    assert await names(label_selector="team") == ["p1", "p3"]
    assert await names(label_selector="!team") == ["p2"]
    assert await names(label_selector="tier,team=ads") == ["p1"]
    assert await names(field_selector="metadata.name=p3") == ["p3"]
    listed = await v1.list_namespaced_pod(NS)
    assert int(listed.metadata.resource_version) >= max(int(p.metadata.resource_version) for p in listed.items)
    everywhere = await client.CoreV1Api(v1.api_client).list_pod_for_all_namespaces(label_selector="tier")
    assert len(everywhere.items) == 2
    with pytest.raises(ApiException) as e:
        await v1.list_namespaced_pod(NS, label_selector="tier in (")
    assert e.value.status == 400


async def test_a_pod_runs_its_command_with_its_env_and_ends_succeeded(v1: client.CoreV1Api) -> None:
    script = "import os; print('value', os.environ['GREETING'], os.environ['HOSTNAME'])"
    await v1.create_namespaced_pod(NS, pod_body("ok", script, env={"GREETING": "hi"}))
    pod = await wait_pod(v1, "ok", phase_is("Succeeded", "Failed"))
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert pod.spec.node_name and pod.status.pod_ip
    assert await v1.read_namespaced_pod_log("ok", NS) == "value hi ok\n"


async def test_watch_sees_pending_running_failed_with_the_exit_code(v1: client.CoreV1Api) -> None:
    listed = await v1.list_namespaced_pod(NS)
    await v1.create_namespaced_pod(NS, pod_body("fails", "import sys; sys.exit(3)", labels={"w": "1"}))
    await v1.create_namespaced_pod(NS, pod_body("other", "pass"))

    def ended(events: list[dict[str, Any]]) -> bool:
        return events[-1]["object"].status.phase in ("Succeeded", "Failed")

    events = await collect(v1, ended, label_selector="w=1", resource_version=listed.metadata.resource_version)
    assert {e["object"].metadata.name for e in events} == {"fails"}
    assert events[0]["type"] == "ADDED" and events[0]["object"].status.phase == "Pending"
    phases = [e["object"].status.phase for e in events]
    assert phases.index("Pending") < phases.index("Running") < phases.index("Failed")
    states = [e["object"].status.container_statuses for e in events]
    assert any(s and s[0].state.waiting and s[0].state.waiting.reason == "ContainerCreating" for s in states)
    terminated = events[-1]["object"].status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    rvs = [int(e["object"].metadata.resource_version) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


async def test_watch_without_resource_version_replays_current_pods_then_follows(v1: client.CoreV1Api) -> None:
    await v1.create_namespaced_pod(NS, pod_body("first", "pass"))
    await wait_pod(v1, "first", phase_is("Succeeded"))
    events = await collect(v1, lambda ev: len(ev) >= 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"].status.phase == "Succeeded"


async def test_resume_from_resource_version_and_410_after_the_window_expires(
    v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes
) -> None:
    await v1.create_namespaced_pod(NS, pod_body("r1", "pass"))
    first = await collect(v1, lambda ev: ev[-1]["object"].status.phase == "Succeeded")
    seen = first[-1]["object"].metadata.resource_version
    await v1.create_namespaced_pod(NS, pod_body("r2", "pass"))
    await wait_pod(v1, "r2", phase_is("Succeeded"))
    resumed = await collect(v1, lambda ev: ev[-1]["object"].status.phase == "Succeeded", resource_version=seen)
    assert {e["object"].metadata.name for e in resumed} == {"r2"} and resumed[0]["type"] == "ADDED"

    fake_kubernetes.expire_watch_window()
    with pytest.raises(ApiException) as e:
        await collect(v1, lambda ev: True, resource_version=seen)
    assert e.value.status == 410 and "Expired" in str(e.value.reason)
    # The client's recovery: re-list, then watch from the list's resourceVersion.
    listed = await v1.list_namespaced_pod(NS)
    await v1.create_namespaced_pod(NS, pod_body("r3", "pass"))
    after = await collect(
        v1, lambda ev: ev[-1]["object"].status.phase == "Succeeded", resource_version=listed.metadata.resource_version
    )
    assert {e["object"].metadata.name for e in after} == {"r3"}


async def test_expire_cuts_an_open_watch_and_its_resume_gets_410(
    v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes
) -> None:
    await v1.create_namespaced_pod(NS, pod_body("cut", "import time; time.sleep(30)"))
    events: list[dict[str, Any]] = []

    async def watch_all() -> None:
        async with watch.Watch() as w:
            async for event in w.stream(v1.list_namespaced_pod, NS):
                events.append(event)

    task = asyncio.create_task(watch_all())
    await wait_pod(v1, "cut", phase_is("Running"))
    while not any(e["object"].status.phase == "Running" for e in events):
        await asyncio.sleep(0.02)
    await asyncio.to_thread(fake_kubernetes.expire_watch_window)
    with pytest.raises(ApiException) as e:
        await asyncio.wait_for(task, 10)
    assert e.value.status == 410


async def test_raw_watch_sends_an_error_event_with_a_410_status(fake_kubernetes: FakeKubernetes) -> None:
    fake_kubernetes.expire_watch_window()
    headers = {"Authorization": f"Bearer {fake_kubernetes.token}"}
    async with aiohttp.ClientSession() as http:
        url = f"{fake_kubernetes.url}/api/v1/namespaces/{NS}/pods?watch=true&resourceVersion=1"
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200
            line = json.loads(await resp.content.readline())
    assert line["type"] == "ERROR"
    assert line["object"]["code"] == 410 and line["object"]["reason"] == "Expired"
    assert line["object"]["message"].startswith("too old resource version: 1 (")


async def test_bookmarks_and_timeout_seconds(v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes) -> None:
    fake_kubernetes.bookmark_interval = 0.05
    listed = await v1.list_namespaced_pod(NS)
    events = []
    async with watch.Watch() as w:
        async for event in w.stream(
            v1.list_namespaced_pod,
            NS,
            resource_version=listed.metadata.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
        ):
            events.append(event)
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    assert events[-1]["raw_object"]["metadata"]["resourceVersion"] == listed.metadata.resource_version


async def test_log_follow_streams_lines_as_the_process_prints_them(v1: client.CoreV1Api) -> None:
    script = "import time\nfor i in range(5):\n    print('line', i)\n    time.sleep(0.1)\n"
    await v1.create_namespaced_pod(NS, pod_body("talk", script))
    await wait_pod(v1, "talk", phase_is("Running", "Succeeded"))
    lines = []
    first_at = None
    async with watch.Watch() as w:
        async for line in w.stream(v1.read_namespaced_pod_log, "talk", NS, container="base"):
            lines.append(line)
            if first_at is None:
                first_at = (await v1.read_namespaced_pod("talk", NS)).status.phase
    assert lines == [f"line {i}\n" for i in range(5)]
    assert first_at == "Running"  # the first line arrived while the container still ran
    assert await v1.read_namespaced_pod_log("talk", NS, tail_lines=2) == "line 3\nline 4\n"
    stamped = await v1.read_namespaced_pod_log("talk", NS, timestamps=True, tail_lines=1)
    assert stamped.endswith("Z line 4\n")
    pod = await wait_pod(v1, "talk", phase_is("Succeeded"))
    started = pod.status.container_statuses[0].state.terminated.started_at
    assert await v1.read_namespaced_pod_log("talk", NS, since_seconds=3600) == "".join(lines)
    assert started is not None
    with pytest.raises(ApiException) as e:
        await v1.read_namespaced_pod_log("talk", NS, container="nope")
    assert e.value.status == 400


async def test_delete_a_running_pod_terminates_gracefully_then_deleted(v1: client.CoreV1Api) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('got TERM', flush=True), sys.exit(0)))\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    await v1.create_namespaced_pod(NS, pod_body("del", script))
    await wait_pod(v1, "del", lambda p: p.status.phase == "Running")
    while await v1.read_namespaced_pod_log("del", NS) != "up\n":  # the handler is installed
        await asyncio.sleep(0.02)
    listed = await v1.list_namespaced_pod(NS)
    deleted = await v1.delete_namespaced_pod("del", NS, grace_period_seconds=5)
    assert deleted.metadata.deletion_timestamp is not None
    events = await collect(
        v1, lambda ev: ev[-1]["type"] == "DELETED", resource_version=listed.metadata.resource_version
    )
    assert events[0]["type"] == "MODIFIED" and events[0]["object"].metadata.deletion_timestamp is not None
    final = events[-1]["object"]
    assert final.status.container_statuses[0].state.terminated.exit_code == 0
    with pytest.raises(ApiException) as e:
        await v1.read_namespaced_pod("del", NS)
    assert e.value.status == 404


async def test_a_pod_ignoring_sigterm_is_killed_after_its_grace_period(v1: client.CoreV1Api) -> None:
    script = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)\n"
    )
    await v1.create_namespaced_pod(NS, pod_body("stubborn", script))
    await wait_pod(v1, "stubborn", phase_is("Running"))
    while await v1.read_namespaced_pod_log("stubborn", NS) != "up\n":  # the handler is installed
        await asyncio.sleep(0.02)
    listed = await v1.list_namespaced_pod(NS)
    await v1.delete_namespaced_pod("stubborn", NS, grace_period_seconds=1)
    events = await collect(
        v1, lambda ev: ev[-1]["type"] == "DELETED", resource_version=listed.metadata.resource_version
    )
    assert events[-1]["object"].status.container_statuses[0].state.terminated.exit_code == 137


async def test_delete_an_ended_pod_is_immediate(v1: client.CoreV1Api) -> None:
    await v1.create_namespaced_pod(NS, pod_body("done", "pass"))
    await wait_pod(v1, "done", phase_is("Succeeded"))
    await v1.delete_namespaced_pod("done", NS)
    assert (await v1.list_namespaced_pod(NS)).items == []
    with pytest.raises(ApiException) as e:
        await v1.delete_namespaced_pod("done", NS)
    assert e.value.status == 404


async def test_patch_labels(v1: client.CoreV1Api) -> None:
    await v1.create_namespaced_pod(NS, pod_body("adopt", "pass", labels={"executor": "old"}))
    patched = await v1.patch_namespaced_pod("adopt", NS, {"metadata": {"labels": {"executor": "new"}}})
    assert patched.metadata.labels == {"executor": "new"}
    listed = await v1.list_namespaced_pod(NS, label_selector="executor=new")
    assert [p.metadata.name for p in listed.items] == ["adopt"]


async def test_a_command_that_cannot_start_is_a_start_error(v1: client.CoreV1Api) -> None:
    body = pod_body("nocmd")
    body["spec"]["containers"][0]["command"] = ["/no/such/binary"]
    await v1.create_namespaced_pod(NS, body)
    pod = await wait_pod(v1, "nocmd", phase_is("Failed"))
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (128, "StartError")


# --- faults ------------------------------------------------------------------------------------


async def test_unschedulable_pod_stays_pending_until_released(
    v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes
) -> None:
    fake_kubernetes.fault_rule(Fault.UNSCHEDULABLE, label_selector="task=big")
    await v1.create_namespaced_pod(NS, pod_body("big", "pass", labels={"task": "big"}))

    def unschedulable(pod: client.V1Pod) -> bool:
        return any(c.type == "PodScheduled" and c.status == "False" for c in pod.status.conditions or [])

    pod = await wait_pod(v1, "big", unschedulable)
    cond = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert (pod.status.phase, cond.reason) == ("Pending", "Unschedulable") and "Insufficient memory" in cond.message
    await asyncio.sleep(0.2)
    assert (await v1.read_namespaced_pod("big", NS)).status.phase == "Pending"
    assert await v1.read_namespaced_pod_log("big", NS) == ""
    await asyncio.to_thread(fake_kubernetes.release_pending, NS, "big")
    assert (await wait_pod(v1, "big", phase_is("Succeeded"))).spec.node_name


async def test_image_pull_failure(v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes) -> None:
    fake_kubernetes.fault_rule(Fault.IMAGE_PULL, name="pull", times=1)
    await v1.create_namespaced_pod(NS, pod_body("pull", "pass"))

    def waiting(reason: str) -> Callable[[client.V1Pod], bool]:
        def check(pod: client.V1Pod) -> bool:
            statuses = pod.status.container_statuses or []
            return bool(statuses and statuses[0].state.waiting and statuses[0].state.waiting.reason == reason)

        return check

    await wait_pod(v1, "pull", waiting("ErrImagePull"))
    with pytest.raises(ApiException) as e:
        await v1.read_namespaced_pod_log("pull", NS)
    assert e.value.status == 400 and "is waiting to start" in e.value.body
    pod = await wait_pod(v1, "pull", waiting("ImagePullBackOff"))
    assert pod.status.phase == "Pending"
    await v1.create_namespaced_pod(NS, pod_body("pull2", "pass"))  # the rule applied once
    assert (await wait_pod(v1, "pull2", phase_is("Succeeded"))).status.phase == "Succeeded"
    await v1.delete_namespaced_pod("pull", NS)
    assert [p.metadata.name for p in (await v1.list_namespaced_pod(NS)).items] == ["pull2"]


async def test_oom_killed(v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes) -> None:
    await v1.create_namespaced_pod(NS, pod_body("hungry", "import time; print('eating'); time.sleep(60)"))
    await wait_pod(v1, "hungry", phase_is("Running"))
    await asyncio.to_thread(fake_kubernetes.oom_kill, NS, "hungry")
    pod = await wait_pod(v1, "hungry", phase_is("Failed"))
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


async def test_oom_rule_after_running(v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes) -> None:
    fake_kubernetes.fault_rule(Fault.OOM_KILLED, label_selector="big", after=0.1)
    await v1.create_namespaced_pod(NS, pod_body("h2", "import time; time.sleep(60)", labels={"big": "yes"}))
    pod = await wait_pod(v1, "h2", phase_is("Failed"))
    assert pod.status.container_statuses[0].state.terminated.reason == "OOMKilled"


async def test_evicted(v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes) -> None:
    await v1.create_namespaced_pod(NS, pod_body("evictee", "import time; time.sleep(60)"))
    await wait_pod(v1, "evictee", phase_is("Running"))
    await asyncio.to_thread(fake_kubernetes.evict, NS, "evictee")
    pod = await wait_pod(v1, "evictee", phase_is("Failed"))
    assert pod.status.reason == "Evicted" and "low on resource" in pod.status.message
    assert any(c.type == "DisruptionTarget" and c.status == "True" for c in pod.status.conditions)


async def test_node_lost_then_pod_gc(v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes) -> None:
    await v1.create_namespaced_pod(NS, pod_body("lost", "import time; time.sleep(60)"))
    await wait_pod(v1, "lost", phase_is("Running"))
    listed = await v1.list_namespaced_pod(NS)
    await asyncio.to_thread(fake_kubernetes.lose_node, NS, "lost")
    with pytest.raises(ApiException) as e:
        await v1.read_namespaced_pod_log("lost", NS)
    assert e.value.status == 500
    events = await collect(
        v1, lambda ev: ev[-1]["type"] == "DELETED", resource_version=listed.metadata.resource_version
    )
    first = events[0]["object"]
    assert any(c.type == "Ready" and c.status == "False" for c in first.status.conditions)
    last = events[-1]["object"]
    assert last.status.phase == "Failed"
    assert any(c.type == "DisruptionTarget" and c.reason == "DeletionByPodGC" for c in last.status.conditions)


async def test_node_lost_without_gc_hangs_graceful_delete(
    v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes
) -> None:
    await v1.create_namespaced_pod(NS, pod_body("stuck", "import time; time.sleep(60)"))
    await wait_pod(v1, "stuck", phase_is("Running"))
    await asyncio.to_thread(lambda: fake_kubernetes.lose_node(NS, "stuck", node_deleted=False))
    await v1.delete_namespaced_pod("stuck", NS, grace_period_seconds=1)
    await asyncio.sleep(1.3)
    pod = await v1.read_namespaced_pod("stuck", NS)
    assert pod.metadata.deletion_timestamp is not None and pod.status.phase == "Running"
    await v1.delete_namespaced_pod("stuck", NS, grace_period_seconds=0)
    assert (await v1.list_namespaced_pod(NS)).items == []


async def test_server_restart_keeps_pods_and_their_processes(
    v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes
) -> None:
    await v1.create_namespaced_pod(NS, pod_body("survivor", "import time; time.sleep(0.5); print('done')"))
    await wait_pod(v1, "survivor", phase_is("Running"))
    await asyncio.to_thread(fake_kubernetes.stop)
    with pytest.raises(aiohttp.ClientConnectionError):
        await v1.read_namespaced_pod("survivor", NS)
    await asyncio.sleep(0.7)
    await asyncio.to_thread(fake_kubernetes.start)
    pod = await wait_pod(v1, "survivor", phase_is("Succeeded"))
    assert pod.metadata.name == "survivor"
    assert await v1.read_namespaced_pod_log("survivor", NS) == "done\n"


async def test_server_stop_cuts_open_watches(v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes) -> None:
    async def watch_with_timeout() -> None:
        async with watch.Watch() as w:
            async for _ in w.stream(v1.list_namespaced_pod, NS, timeout_seconds=30):
                pass

    await v1.create_namespaced_pod(NS, pod_body("w", "pass"))
    task = asyncio.create_task(watch_with_timeout())
    await asyncio.sleep(0.2)
    await asyncio.to_thread(fake_kubernetes.stop)
    done, _ = await asyncio.wait([task], timeout=5)
    assert done, "the watch outlived the server"
    error = task.exception()
    assert error is None or isinstance(error, aiohttp.ClientError)


async def test_wrong_token_is_401(fake_kubernetes: FakeKubernetes, tmp_path: Any) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake_kubernetes.url}/api/v1/namespaces/{NS}/pods") as resp:
            assert resp.status == 401
            assert (await resp.json())["reason"] == "Unauthorized"


async def test_a_pod_relabelled_out_of_a_selector_is_deleted_for_that_watch(v1: client.CoreV1Api) -> None:
    await v1.create_namespaced_pod(NS, pod_body("mine", "import time; time.sleep(30)", labels={"executor": "a"}))
    await wait_pod(v1, "mine", phase_is("Running"))
    listed = await v1.list_namespaced_pod(NS, label_selector="executor=a")
    await v1.patch_namespaced_pod("mine", NS, {"metadata": {"labels": {"executor": "b"}}})
    for_a = await collect(
        v1, lambda ev: True, label_selector="executor=a", resource_version=listed.metadata.resource_version
    )
    assert for_a[0]["type"] == "DELETED" and for_a[0]["object"].metadata.labels == {"executor": "a"}
    for_b = await collect(
        v1, lambda ev: True, label_selector="executor=b", resource_version=listed.metadata.resource_version
    )
    assert for_b[0]["type"] == "ADDED" and for_b[0]["object"].metadata.labels == {"executor": "b"}


async def test_active_deadline_fails_the_pod(v1: client.CoreV1Api) -> None:
    body = pod_body("late", "import time; time.sleep(30)")
    body["spec"]["activeDeadlineSeconds"] = 1
    body["spec"]["terminationGracePeriodSeconds"] = 1
    await v1.create_namespaced_pod(NS, body)
    pod = await wait_pod(v1, "late", phase_is("Failed"))
    assert pod.status.reason == "DeadlineExceeded"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 143


async def test_env_field_refs_expansion_and_generate_name(v1: client.CoreV1Api) -> None:
    body = pod_body("", "import os; print(os.environ['POD'], os.environ['NSPACE'], os.environ['BOTH'])", env={"A": "x"})
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "gen-"
    body["spec"]["containers"][0]["env"] += [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NSPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "BOTH", "value": "$(A)-$(A)-$$(A)"},
    ]
    created = await v1.create_namespaced_pod(NS, body)
    name = created.metadata.name
    assert name.startswith("gen-") and len(name) == len("gen-") + 5
    await wait_pod(v1, name, phase_is("Succeeded"))
    assert await v1.read_namespaced_pod_log(name, NS) == f"{name} {NS} x-x-$(A)\n"


async def test_only_configured_namespaces_exist(tmp_path: Any) -> None:
    with FakeKubernetes(tmp_path, namespaces={"spinner"}) as k8s:
        async with core_api(k8s, tmp_path) as v1:
            await v1.create_namespaced_pod("spinner", pod_body("here", "pass"))
            with pytest.raises(ApiException) as e:
                await v1.create_namespaced_pod("elsewhere", pod_body("there", "pass"))
            assert e.value.status == 404
            assert json.loads(e.value.body)["message"] == 'namespaces "elsewhere" not found'


async def test_python_in_a_command_is_this_interpreter(v1: client.CoreV1Api) -> None:
    body = pod_body("py")
    body["spec"]["containers"][0]["command"] = ["python", "-c", "import sys; print(sys.executable)"]
    body["spec"]["containers"][0]["args"] = []
    await v1.create_namespaced_pod(NS, body)
    await wait_pod(v1, "py", phase_is("Succeeded"))
    assert await v1.read_namespaced_pod_log("py", NS) == f"{sys.executable.rsplit('/', 1)[0]}/python\n"


@contextlib.asynccontextmanager
async def core_api(k8s: FakeKubernetes, tmp_path: Any) -> AsyncIterator[client.CoreV1Api]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(k8s.write_kubeconfig(tmp_path / "kubeconfig")), client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        yield client.CoreV1Api(api)


async def test_hooks_on_pods_that_exist(tmp_path: Any) -> None:
    with FakeKubernetes(tmp_path, schedule_delay=0.3, start_delay=0.3) as k8s:
        async with core_api(k8s, tmp_path) as v1:
            await v1.create_namespaced_pod(NS, pod_body("held", "pass"))
            await v1.create_namespaced_pod(NS, pod_body("pull", "pass"))
            await asyncio.to_thread(k8s.hold_pending, NS, "held")
            await asyncio.to_thread(k8s.image_pull_error, NS, "pull")
            pod = await wait_pod(v1, "pull", lambda p: bool(p.status.container_statuses))
            assert pod.status.container_statuses[0].state.waiting.reason in ("ErrImagePull", "ImagePullBackOff")
            held = await v1.read_namespaced_pod("held", NS)
            assert held.status.phase == "Pending" and not held.spec.node_name
            assert held.status.conditions[0].reason == "Unschedulable"
            with pytest.raises(ValueError):
                await asyncio.to_thread(k8s.oom_kill, NS, "held")  # nothing runs yet
            await asyncio.to_thread(k8s.evict, NS, "held")
            assert (await wait_pod(v1, "held", phase_is("Failed"))).status.reason == "Evicted"


async def test_restart_keeps_resource_versions_and_watches_resume(
    v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes
) -> None:
    await v1.create_namespaced_pod(NS, pod_body("before", "pass"))
    await wait_pod(v1, "before", phase_is("Succeeded"))
    listed = await v1.list_namespaced_pod(NS)
    await asyncio.to_thread(fake_kubernetes.restart)
    await v1.create_namespaced_pod(NS, pod_body("after", "pass"))
    events = await collect(
        v1, lambda ev: ev[-1]["object"].status.phase == "Succeeded", resource_version=listed.metadata.resource_version
    )
    assert {e["object"].metadata.name for e in events} == {"after"}


def _outlived(pid: int) -> bool:
    """Whether a pod's process still runs: not gone, not a zombie (ended, not collected yet), not a reused pid."""
    proc = Path("/proc", str(pid))
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_text().replace("\0", " ")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z" and "time.sleep(60)" in cmdline


async def test_closing_with_pods_at_every_stage_leaves_no_process(tmp_path: Any) -> None:
    k8s = FakeKubernetes(tmp_path, schedule_delay=0.05)
    k8s.start()
    try:
        async with core_api(k8s, tmp_path) as v1:
            k8s.fault_rule(Fault.UNSCHEDULABLE, label_selector="stage=held")
            k8s.fault_rule(Fault.IMAGE_PULL, label_selector="stage=pull")
            for i in range(12):
                stage = ["held", "pull", "run", "done"][i % 4]
                script = "pass" if stage == "done" else "import time; time.sleep(60)"
                await v1.create_namespaced_pod(NS, pod_body(f"p{i}", script, labels={"stage": stage}))
            await wait_pod(v1, "p2", phase_is("Running"))
            await wait_pod(v1, "p3", phase_is("Succeeded"))
            await v1.delete_namespaced_pod("p6", NS, grace_period_seconds=0)
            pids = await asyncio.to_thread(k8s.pids)
            assert len(pids) >= 3
    finally:
        await asyncio.to_thread(k8s.close)
    for pid in pids.values():
        if _outlived(pid):
            raise AssertionError(f"process {pid} outlived the fake")


async def test_list_pages_with_limit_and_continue_are_one_snapshot(
    v1: client.CoreV1Api, fake_kubernetes: FakeKubernetes
) -> None:
    for i in range(5):
        await v1.create_namespaced_pod(NS, pod_body(f"page{i}", "pass"))
    first = await v1.list_namespaced_pod(NS, limit=2)
    assert [p.metadata.name for p in first.items] == ["page0", "page1"]
    assert first.metadata.remaining_item_count == 3 and first.metadata._continue
    await v1.delete_namespaced_pod("page3", NS, grace_period_seconds=0)
    await v1.create_namespaced_pod(NS, pod_body("page5", "pass"))
    names = [p.metadata.name for p in first.items]
    token = first.metadata._continue
    while token:
        page = await v1.list_namespaced_pod(NS, limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [p.metadata.name for p in page.items]
        token = page.metadata._continue
    assert names == [f"page{i}" for i in range(5)]  # as it was when the list began
    fake_kubernetes.expire_watch_window()
    with pytest.raises(ApiException) as e:
        await v1.list_namespaced_pod(NS, limit=2, _continue=first.metadata._continue)
    assert e.value.status == 410
