"""A fake Kubernetes API server: core/v1 pods that really run, driven through kubernetes_asyncio.

`FakeKubernetes` answers plain HTTP on 127.0.0.1 from its own thread (see `_server.py`), and
plays kube-apiserver, the scheduler and one kubelet for pods. `write_kubeconfig()` gives a file
for `kubernetes_asyncio.config.load_kube_config(config_file=...)` (bearer token auth).

Reproduced, as the real API server answers it:
- Pods in namespaces (`/api/v1/namespaces/{ns}/pods[/{name}]`, and `/api/v1/pods` across all):
  create (201; 409 `AlreadyExists` Status; 422 `Invalid` for bad names, label keys/values,
  resource quantities, requests above limits, missing image; 400 on a namespace mismatch;
  `generateName`), get (404 `NotFound` Status), list with `labelSelector` (`=`, `==`, `!=`, `in`,
  `notin`, `k`, `!k`) and `fieldSelector` (metadata.name, status.phase, spec.nodeName, ...),
  the list's `metadata.resourceVersion`, `limit` / `continue` pages of one consistent snapshot
  (`remainingItemCount`; a continue token older than the window is 410), merge/strategic-merge PATCH of labels and annotations,
  and defaulting (uid, creationTimestamp, restartPolicy, grace period, qosClass, ...).
- One global, increasing resourceVersion; watch (`?watch=true`) as newline-delimited JSON events
  ADDED / MODIFIED / DELETED carrying the whole object (a pod whose labels stop or start matching
  the selector is DELETED / ADDED, as the watch cache does): without resourceVersion (or "0") it
  first replays the current pods as ADDED; with one it sends what happened after it; older than
  the retained window it sends one `ERROR` event with a 410 `Expired` Status and ends, like the
  watch cache. `timeoutSeconds` ends the stream; `allowWatchBookmarks` sends BOOKMARK events.
- Each pod's first container really runs: `command` + `args` as a local process (the image is
  ignored), `env` values (and fieldRef to metadata.name/namespace, spec.nodeName, status.podIP),
  `workingDir`, in its own process group. Status goes Pending (PodScheduled, then waiting
  `ContainerCreating`) -> Running (running.startedAt, Ready) -> Succeeded / Failed with
  `terminated` (exitCode, reason Completed / Error, 128+signal when killed); a command that
  cannot start ends as terminated `StartError`, exit code 128; `activeDeadlineSeconds` fails the
  pod (reason DeadlineExceeded) and stops its container with its grace period.
- Delete with `gracePeriodSeconds` (query or DeleteOptions body) and a uid precondition: a pod
  not on a node or already ended goes at once; a running one gets deletionTimestamp (MODIFIED),
  SIGTERM, SIGKILL after the grace period, its terminated status, then DELETED. 0 deletes at once.
- Pod log (`.../log`): `container`, `follow` (streams until the container ends or the pod goes),
  `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`, `limitBytes`; stdout and stderr
  interleaved; the kubelet's 400 answers for a container waiting to start (ContainerCreating,
  image pull) or an unknown container; `previous` has no earlier container (400).
- `created()`: the metadata of every pod created (deleted ones too), for tests of what was launched.
- Bearer-token authentication (401 Status), `/version`, `GET /api/v1/namespaces/{ns}`.
- Faults, as Python hooks (not HTTP): `hold_pending` (Unschedulable), `image_pull_error`
  (ErrImagePull -> ImagePullBackOff), `oom_kill` (terminated OOMKilled 137), `evict`
  (phase Failed, reason Evicted, DisruptionTarget), `lose_node` (Ready False, logs unreachable,
  then PodGC: Failed with DisruptionTarget DeletionByPodGC and DELETED; or stuck, where a
  graceful delete never completes), `fault_rule` to apply them to pods not created yet,
  `expire_watch_window` (cuts open watches; any older resourceVersion now gets 410),
  `stop` / `start` / `restart` of the server keeping every pod and its process.

Left out: every other resource (nodes, events, namespaces as objects, secrets, ...), PUT,
JSON patch and server-side apply, changing anything but labels/annotations, `resourceVersionMatch`
(a list without `continue` is the current state), watch `sendInitialEvents`,
TLS and other auth, admission (quota, limit ranges, service accounts), init and extra containers
(refused with 422), restarts (restartPolicy is treated as Never), probes, image pulls and
entrypoints (a container without `command` cannot start), resource limits (nothing is enforced),
volumes, exec/attach/port-forward, the kubelet's line splitting and log rotation, and the
API server's delays: transitions here take milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes._k8s_model import (
    HOST_IP,
    NODE_NAME,
    Event,
    Fault,
    Pod,
    Rule,
    container_env,
    decode_continue,
    encode_continue,
    flag,
    int_param,
    label_matcher,
    now,
    parse_ts,
    signal_group,
    ts,
)
from tests.fakes._k8s_validation import (
    ApiError,
    field_selector,
    qos_class,
    status_object,
    validate_pod,
)
from tests.fakes._server import BackgroundServer, track_stream

__all__ = ["FakeKubernetes", "Fault"]


class FakeKubernetes:
    """A fake API server for pods; use as a context manager (or `start()` / `close()`)."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        token: str | None = "fake-token",
        namespaces: set[str] | None = None,
        watch_window: int = 1000,
        schedule_delay: float = 0.01,
        start_delay: float = 0.01,
        image_pull_backoff: float = 0.2,
        pod_gc_delay: float = 0.2,
        bookmark_interval: float = 1.0,
        base_env: Mapping[str, str] | None = None,
        port: int = 0,
    ) -> None:
        """`namespaces`: the ones that exist (None: any). `watch_window`: events kept for watches that resume."""
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fake-k8s-"))
        self.token = token
        self.namespaces = namespaces
        self.schedule_delay, self.start_delay = schedule_delay, start_delay
        self.image_pull_backoff, self.pod_gc_delay = image_pull_backoff, pod_gc_delay
        self.bookmark_interval = bookmark_interval
        self.create_delay = 0.0  # seconds a pod creation waits before it is answered (a slow API server)
        if base_env is None:
            # The "image" is this interpreter's environment: `python` in a command is the one running the tests.
            path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")])
            base_env = {"PATH": path, "LANG": "C.UTF-8"}
        self.base_env = dict(base_env)
        self._pods: dict[tuple[str, str], Pod] = {}
        self._rv = 1
        self._history: deque[Event] = deque(maxlen=watch_window)
        self._compacted = 1  # watches from a resourceVersion below this get 410
        self._watchers: set[asyncio.Queue[Event | None]] = set()
        self._rules: list[Rule] = []
        self._ip = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests: list[tuple[str, str]] = []  # (method, path_qs) of every request, for assertions
        self._created: list[dict[str, Any]] = []  # the metadata of every pod created, deleted ones too
        self._server = BackgroundServer(self._make_app, "fake-kubernetes")
        self._server.port = port

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> FakeKubernetes:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or start again) serving, on the same port as before."""
        self._server.start()

    def stop(self) -> None:
        """Kill the server: connections are refused, open watches and log streams are cut. Pods keep running."""
        self._server.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop serving, kill every pod's process, and remove the work folder if this fake made it."""
        self._server.close(before_stop=self._kill_all)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _kill_all(self) -> None:
        for pod in list(self._pods.values()):
            pod.gone = True
            signal_group(pod.process, signal.SIGKILL)
        # Lifecycles reading a killed process end by themselves (closing its pipes); the rest wait on timers.
        tasks = [p.lifecycle for p in self._pods.values() if p.lifecycle is not None and not p.lifecycle.done()]
        reading = [p.lifecycle for p in self._pods.values() if p.process is not None and p.lifecycle in tasks]
        if reading:
            await asyncio.wait(reading, timeout=5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pod in self._pods.values():
            if pod.process is not None and pod.process.returncode is None:
                await pod.process.wait()

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """Write a kubeconfig (JSON is YAML) pointing at this server with its token; return its path."""
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": user}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
            "current-context": "fake",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2))
        return path

    # --- test hooks (called from the test's thread) ---------------------------------------------

    def pods(self) -> list[dict[str, Any]]:
        """A copy of every pod object, as the API would return it."""
        return self._server.call(lambda: [copy.deepcopy(p.obj) for p in self._pods.values()])

    def created(self) -> list[dict[str, Any]]:
        """The metadata of every pod ever created here, in order (also the ones deleted since)."""
        return self._server.call(lambda: copy.deepcopy(self._created))

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._server.call(lambda: copy.deepcopy(p.obj) if (p := self._pods.get((namespace, name))) else None)

    def pids(self) -> dict[tuple[str, str], int]:
        """The local process id of each pod whose container process was started."""
        return self._server.call(lambda: {k: p.process.pid for k, p in self._pods.items() if p.process is not None})

    @property
    def resource_version(self) -> int:
        return self._server.call(lambda: self._rv)

    def hold_pending(self, namespace: str, name: str) -> None:
        """Keep a pod that is not scheduled yet Pending, with PodScheduled False / Unschedulable."""
        self._server.call(lambda: self._apply(self._get(namespace, name), Fault.UNSCHEDULABLE))

    def release_pending(self, namespace: str, name: str) -> None:
        """Let a held pod be scheduled and carry on."""
        self._server.call(lambda: self._get(namespace, name).release.set())

    def image_pull_error(self, namespace: str, name: str) -> None:
        """Make a pod whose container has not started fail to pull its image (ErrImagePull, then ImagePullBackOff)."""
        self._server.call(lambda: self._apply(self._get(namespace, name), Fault.IMAGE_PULL))

    def oom_kill(self, namespace: str, name: str) -> None:
        """Kill the container's process as the kernel's OOM killer would: terminated OOMKilled, exit code 137."""
        self._server.call(lambda: self._apply(self._get(namespace, name), Fault.OOM_KILLED))

    def evict(self, namespace: str, name: str) -> None:
        """Evict the pod as the kubelet does under node pressure: phase Failed, reason Evicted."""
        self._server.call(lambda: self._apply(self._get(namespace, name), Fault.EVICTED))

    def lose_node(self, namespace: str, name: str, *, node_deleted: bool = True) -> None:
        """The pod's node stops answering: Ready False, logs unreadable, the process gone without a status.

        With `node_deleted` the pod garbage collector then fails the pod (DisruptionTarget
        DeletionByPodGC) and deletes it; without, the pod stays, and a graceful delete never completes.
        """
        self._server.call(lambda: self._apply(self._get(namespace, name), Fault.NODE_LOST, node_deleted=node_deleted))

    def fault_rule(
        self,
        fault: Fault,
        *,
        namespace: str | None = None,
        name: str | None = None,
        label_selector: str = "",
        after: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Apply `fault` to pods created from now on that match; OOM / evict / node loss `after` seconds of running.

        UNSCHEDULABLE holds the pod before scheduling, IMAGE_PULL before its container starts.
        `times`: how many pods it applies to (None: every one).
        """
        matches = label_matcher(label_selector)
        self._server.call(lambda: self._rules.append(Rule(fault, namespace, name, matches, after, times)))

    def clear_fault_rules(self) -> None:
        self._server.call(self._rules.clear)

    def expire_watch_window(self) -> None:
        """Compact the watch history: open watches are cut, and resuming from any resourceVersion seen so far gets
        410 Expired (as if other objects' writes moved the cluster's revision on and the cache dropped them)."""

        def expire() -> None:
            self._rv += 1
            self._compacted = self._rv
            self._history.clear()
            for q in self._watchers:
                q.put_nowait(None)

        self._server.call(expire)

    # --- state changes (in the server's loop) ----------------------------------------------------

    def _get(self, namespace: str, name: str) -> Pod:
        pod = self._pods.get((namespace, name))
        if pod is None or pod.gone:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        return pod

    def _record(self, type_: str, pod: Pod) -> None:
        self._rv += 1
        pod.obj["metadata"]["resourceVersion"] = str(self._rv)
        event = Event(type_, self._rv, copy.deepcopy(pod.obj), pod.recorded)
        pod.recorded = event.obj
        if len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].rv
        self._history.append(event)
        for q in self._watchers:
            q.put_nowait(event)

    def _modified(self, pod: Pod) -> None:
        if not pod.gone:
            self._record("MODIFIED", pod)

    def _remove(self, pod: Pod) -> None:
        if pod.gone:
            return
        pod.gone = True
        self._pods.pop(pod.key, None)
        self._record("DELETED", pod)
        pod.wake_log_readers()

    def _set_condition(self, pod: Pod, type_: str, status: str, reason: str = "", message: str = "") -> None:
        conditions: list[dict[str, Any]] = pod.obj["status"].setdefault("conditions", [])
        cond: dict[str, Any] = {"type": type_, "status": status, "lastProbeTime": None}
        cond["lastTransitionTime"] = ts(now())
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        for i, old in enumerate(conditions):
            if old["type"] == type_:
                if old.get("status") == status:
                    cond["lastTransitionTime"] = old.get("lastTransitionTime")
                conditions[i] = cond
                return
        conditions.append(cond)

    def _container_state(self, pod: Pod, state: dict[str, Any], *, ready: bool = False) -> None:
        c = pod.obj["spec"]["containers"][0]
        status: dict[str, Any] = {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": "running" in state,
            "state": state,
            "lastState": {},
        }
        if pod.started:
            status["containerID"] = f"containerd://{pod.obj['metadata']['uid'].replace('-', '')}"
        pod.obj["status"]["containerStatuses"] = [status]

    def _apply(self, pod: Pod, fault: Fault, *, node_deleted: bool = True) -> None:
        """Start a fault on a pod now (or at the right stage of its life, for the pre-start ones)."""
        phase = pod.obj["status"]["phase"]
        if fault in (Fault.UNSCHEDULABLE, Fault.IMAGE_PULL):
            if (fault is Fault.UNSCHEDULABLE and pod.obj["spec"].get("nodeName")) or pod.started:
                raise ValueError(f"pod {pod.key} is past the point where {fault.value} can happen")
            pod.faults.append(Rule(fault, None, None, lambda _: True, 0, None))
            return
        if phase in ("Succeeded", "Failed"):
            raise ValueError(f"pod {pod.key} has already ended ({phase})")
        if fault is Fault.OOM_KILLED:
            if pod.process is None:
                raise ValueError(f"pod {pod.key} has no running container to kill")
            pod.kill_reason = "OOMKilled"
            signal_group(pod.process, signal.SIGKILL)
        elif fault is Fault.EVICTED:
            pod.kill_reason = "Evicted"
            st = pod.obj["status"]
            st["reason"] = "Evicted"
            st["message"] = (
                "The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. "
                f"Container {pod.obj['spec']['containers'][0]['name']} was using 1Gi, request is 0."
            )
            self._set_condition(pod, "DisruptionTarget", "True", "TerminationByKubelet", "Pod was evicted")
            if pod.process is not None and pod.process.returncode is None:
                signal_group(pod.process, signal.SIGKILL)
            elif not pod.started:
                if pod.lifecycle is not None:
                    pod.lifecycle.cancel()
                st["phase"] = "Failed"
                self._modified(pod)
        elif fault is Fault.NODE_LOST:
            pod.node_lost = True
            signal_group(pod.process, signal.SIGKILL)
            if pod.lifecycle is not None:
                pod.lifecycle.cancel()
            self._set_condition(pod, "Ready", "False", "NodeNotReady", "Kubelet stopped posting node status.")
            self._modified(pod)
            if node_deleted:
                self._spawn(self._pod_gc(pod))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pod_gc(self, pod: Pod) -> None:
        await asyncio.sleep(self.pod_gc_delay)
        if pod.gone:
            return
        pod.obj["status"]["phase"] = "Failed"
        self._set_condition(pod, "DisruptionTarget", "True", "DeletionByPodGC", "PodGC: node no longer exists")
        self._modified(pod)
        self._remove(pod)

    def _take_rules(self, pod: Pod) -> None:
        ns, name = pod.key
        labels = pod.obj["metadata"].get("labels") or {}
        for rule in list(self._rules):
            if rule.namespace not in (None, ns) or rule.name not in (None, name) or not rule.matches(labels):
                continue
            pod.faults.append(rule)
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self._rules.remove(rule)

    def _has_fault(self, pod: Pod, fault: Fault) -> Rule | None:
        return next((r for r in pod.faults if r.fault is fault), None)

    async def _lifecycle(self, pod: Pod) -> None:
        """Scheduler and kubelet for one pod."""
        await asyncio.sleep(self.schedule_delay)
        if self._has_fault(pod, Fault.UNSCHEDULABLE):
            self._set_condition(
                pod,
                "PodScheduled",
                "False",
                "Unschedulable",
                "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: "
                "1 No preemption victims found for incoming pod.",
            )
            self._modified(pod)
            await pod.release.wait()
        pod.obj["spec"]["nodeName"] = NODE_NAME
        self._set_condition(pod, "PodScheduled", "True")
        self._modified(pod)

        await asyncio.sleep(self.start_delay)
        self._ip += 1
        st = pod.obj["status"]
        st.update(hostIP=HOST_IP, podIP=f"10.244.0.{self._ip % 250 + 2}", startTime=ts(now()))
        st["podIPs"] = [{"ip": st["podIP"]}]
        for cond in ("PodReadyToStartContainers", "Initialized"):
            self._set_condition(pod, cond, "True")
        name = pod.obj["spec"]["containers"][0]["name"]
        for cond in ("Ready", "ContainersReady"):
            self._set_condition(pod, cond, "False", "ContainersNotReady", f"containers with unready status: [{name}]")
        self._container_state(pod, {"waiting": {"reason": "ContainerCreating"}})
        self._modified(pod)

        if self._has_fault(pod, Fault.IMAGE_PULL):
            await self._image_pull_failure(pod)
            return
        await self._run_container(pod)

    async def _image_pull_failure(self, pod: Pod) -> None:
        image = pod.obj["spec"]["containers"][0]["image"]
        self._container_state(
            pod,
            {
                "waiting": {
                    "reason": "ErrImagePull",
                    "message": f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
                    f'failed to resolve reference "{image}": not found',
                }
            },
        )
        self._modified(pod)
        await asyncio.sleep(self.image_pull_backoff)
        self._container_state(
            pod, {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
        )
        self._modified(pod)

    async def _run_container(self, pod: Pod) -> None:
        c = pod.obj["spec"]["containers"][0]
        argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        cwd = Path(c["workingDir"]) if c.get("workingDir") else self.workdir / "pods" / pod.obj["metadata"]["uid"]
        started = now()
        try:
            if not c.get("command"):
                raise FileNotFoundError("the fake has no image entrypoint: give the container a command")
            env = container_env(pod, self.base_env, self.workdir / "pods" / pod.obj["metadata"]["uid"])
            cwd.mkdir(parents=True, exist_ok=True)
            pod.started = True  # from here a delete or a fault waits for the process instead of cancelling this
            pod.process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                limit=2**20,
            )
        except (OSError, ValueError) as e:
            pod.started = True
            pod.output_done = True
            message = f"failed to create containerd task: exec: {argv[:1]}: {e}"
            self._container_state(
                pod,
                {
                    "terminated": {
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": message,
                        "startedAt": "1970-01-01T00:00:00Z",
                        "finishedAt": ts(now()),
                    }
                },
            )
            self._finish(pod, "Failed")
            return
        if pod.gone or pod.kill_reason or pod.node_lost:  # killed while it was being started
            signal_group(pod.process, signal.SIGKILL)
        elif pod.obj["metadata"].get("deletionTimestamp"):
            self._spawn(self._graceful_kill(pod, float(pod.obj["metadata"].get("deletionGracePeriodSeconds", 0))))
        running_since = ts(started)
        self._container_state(pod, {"running": {"startedAt": running_since}}, ready=True)
        for cond in ("Ready", "ContainersReady"):
            self._set_condition(pod, cond, "True")
        pod.obj["status"]["phase"] = "Running"
        self._modified(pod)
        for rule in pod.faults:
            if rule.fault in (Fault.OOM_KILLED, Fault.EVICTED, Fault.NODE_LOST):
                self._spawn(self._delayed_fault(pod, rule))
        if pod.obj["spec"].get("activeDeadlineSeconds"):
            self._spawn(self._deadline(pod, float(pod.obj["spec"]["activeDeadlineSeconds"])))

        assert pod.process.stdout is not None
        while line := await pod.process.stdout.readline():
            pod.append_log(line)
        code = await pod.process.wait()
        pod.output_done = True
        pod.wake_log_readers()
        if pod.node_lost or pod.gone:
            return  # nobody is left to report it
        exit_code = code if code >= 0 else 128 - code
        reason = "Completed" if exit_code == 0 else "Error"
        if pod.kill_reason == "OOMKilled":
            exit_code, reason = 137, "OOMKilled"
        terminated = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": running_since,
            "finishedAt": ts(now()),
            "containerID": f"containerd://{pod.obj['metadata']['uid'].replace('-', '')}",
        }
        self._container_state(pod, {"terminated": terminated})
        self._finish(pod, "Succeeded" if exit_code == 0 and pod.kill_reason is None else "Failed")

    def _finish(self, pod: Pod, phase: str) -> None:
        pod.obj["status"]["phase"] = phase
        for cond in ("Ready", "ContainersReady"):
            self._set_condition(pod, cond, "False", "PodCompleted")
        self._modified(pod)
        if pod.obj["metadata"].get("deletionTimestamp"):
            self._remove(pod)

    async def _delayed_fault(self, pod: Pod, rule: Rule) -> None:
        await asyncio.sleep(rule.after)
        if not pod.gone and pod.obj["status"]["phase"] == "Running":
            self._apply(pod, rule.fault)

    async def _deadline(self, pod: Pod, seconds: float) -> None:
        """spec.activeDeadlineSeconds, counted from startTime: the kubelet fails the pod and kills its container."""
        await asyncio.sleep(
            max(0.0, parse_ts(pod.obj["status"]["startTime"]).timestamp() + seconds - now().timestamp())
        )
        if pod.gone or pod.process is None or pod.process.returncode is not None or pod.node_lost:
            return
        pod.kill_reason = "DeadlineExceeded"
        pod.obj["status"]["reason"] = "DeadlineExceeded"
        pod.obj["status"]["message"] = "Pod was active on the node longer than the specified deadline"
        await self._graceful_kill(pod, float(pod.obj["spec"]["terminationGracePeriodSeconds"]))

    async def _graceful_kill(self, pod: Pod, grace: float) -> None:
        process = pod.process
        if process is None:  # still being started: _run_container sees the deletionTimestamp
            return
        signal_group(process, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), grace)
            return
        signal_group(process, signal.SIGKILL)

    # --- HTTP ----------------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=16 * 2**20)
        r = app.router
        r.add_get("/version", self._version)
        r.add_get("/api/v1/namespaces/{namespace}", self._get_namespace)
        r.add_get("/api/v1/pods", self._list_pods)
        r.add_get("/api/v1/namespaces/{namespace}/pods", self._list_pods)
        r.add_post("/api/v1/namespaces/{namespace}/pods", self._create_pod)
        r.add_get("/api/v1/namespaces/{namespace}/pods/{name}", self._read_pod)
        r.add_get("/api/v1/namespaces/{namespace}/pods/{name}/status", self._read_pod)
        r.add_patch("/api/v1/namespaces/{namespace}/pods/{name}", self._patch_pod)
        r.add_delete("/api/v1/namespaces/{namespace}/pods/{name}", self._delete_pod)
        r.add_get("/api/v1/namespaces/{namespace}/pods/{name}/log", self._pod_log)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        try:
            if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            missing = request.match_info.http_exception
            if missing is not None:
                reason = "MethodNotAllowed" if missing.status == 405 else "NotFound"
                raise ApiError(missing.status, reason, "the server could not find the requested resource")
            ns = request.match_info.get("namespace")
            if ns is not None and self.namespaces is not None and ns not in self.namespaces:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as e:
            return web.json_response(e.status(), status=e.code)

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "34", "gitVersion": "v1.34.0-fake", "platform": "linux/amd64"})

    async def _get_namespace(self, request: web.Request) -> web.Response:
        ns = request.match_info["namespace"]
        return web.json_response(
            {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns}, "status": {"phase": "Active"}}
        )

    async def _body(self, request: web.Request) -> Any:
        try:
            return await request.json(loads=json.loads)
        except ValueError as e:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {e}") from e

    async def _create_pod(self, request: web.Request) -> web.Response:
        ns = request.match_info["namespace"]
        body = await self._body(request)
        if not isinstance(body, dict) or body.get("kind", "Pod") != "Pod":
            raise ApiError(400, "BadRequest", "the body must be a Pod")
        obj = copy.deepcopy(body)
        obj["kind"], obj["apiVersion"] = "Pod", "v1"
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", ns) != ns:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name") or ""
        causes = validate_pod(obj)
        if causes:
            message = f'Pod "{name}" is invalid: ' + ", ".join(f"{c['field']}: {c['message']}" for c in causes)
            raise ApiError(422, "Invalid", message, {"name": name, "kind": "Pod", "causes": causes})
        if (ns, name) in self._pods:
            raise ApiError(409, "AlreadyExists", f'pods "{name}" already exists', {"name": name, "kind": "pods"})
        if request.query.get("dryRun"):
            return web.json_response(obj, status=201)
        meta.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=ts(now()))
        meta.pop("resourceVersion", None)
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        for c in spec["containers"]:
            tagged = ":" in c["image"].rsplit("/", 1)[-1] and not c["image"].endswith(":latest")
            c.setdefault("imagePullPolicy", "IfNotPresent" if tagged else "Always")
            c.setdefault("resources", {})
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec["containers"])}
        if self.create_delay:
            await asyncio.sleep(self.create_delay)
        pod = Pod(obj=obj)
        self._pods[(ns, name)] = pod
        self._created.append(copy.deepcopy(obj["metadata"]))
        self._take_rules(pod)
        self._record("ADDED", pod)
        pod.lifecycle = asyncio.get_running_loop().create_task(self._lifecycle(pod))
        return web.json_response(pod.obj, status=201)

    async def _read_pod(self, request: web.Request) -> web.Response:
        pod = self._get(request.match_info["namespace"], request.match_info["name"])
        return web.json_response(pod.obj)

    async def _patch_pod(self, request: web.Request) -> web.Response:
        pod = self._get(request.match_info["namespace"], request.match_info["name"])
        kind = request.content_type
        if kind not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", f"the fake supports merge patches only, not {kind}")
        patch = await self._body(request)
        if (
            not isinstance(patch, dict)
            or set(patch) - {"metadata"}
            or set(patch.get("metadata") or {})
            - {
                "labels",
                "annotations",
            }
        ):
            raise ApiError(422, "Invalid", "the fake lets patches change metadata.labels and metadata.annotations only")
        meta = pod.obj["metadata"]
        for kind_ in ("labels", "annotations"):
            for key, value in ((patch.get("metadata") or {}).get(kind_) or {}).items():
                target = meta.setdefault(kind_, {})
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = value
        causes = validate_pod(pod.obj)
        if causes:
            raise ApiError(422, "Invalid", f'Pod "{pod.key[1]}" is invalid: {causes[0]["message"]}')
        self._modified(pod)
        return web.json_response(pod.obj)

    async def _delete_pod(self, request: web.Request) -> web.Response:
        pod = self._get(request.match_info["namespace"], request.match_info["name"])
        options: dict[str, Any] = {}
        if request.can_read_body:
            body = await self._body(request)
            options = body if isinstance(body, dict) else {}
        grace_text = request.query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        grace = (
            int_param(str(grace_text), "gracePeriodSeconds")
            if grace_text is not None
            else int(pod.obj["spec"]["terminationGracePeriodSeconds"])
        )
        uid = (options.get("preconditions") or {}).get("uid")
        if uid and uid != pod.obj["metadata"]["uid"]:
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {pod.obj['metadata']['uid']}",
            )
        meta = pod.obj["metadata"]
        ended = pod.obj["status"]["phase"] in ("Succeeded", "Failed")
        if grace == 0 or not pod.obj["spec"].get("nodeName") or (ended and not pod.node_lost) or not pod.started:
            if not pod.node_lost and pod.process is not None and pod.process.returncode is None:
                signal_group(pod.process, signal.SIGKILL)
            if pod.lifecycle is not None and not pod.started:
                pod.lifecycle.cancel()
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = ts(now())
                meta["deletionGracePeriodSeconds"] = 0
            self._remove(pod)
            return web.json_response(pod.obj)
        if meta.get("deletionTimestamp"):
            return web.json_response(pod.obj)
        meta["deletionTimestamp"] = ts(now() + timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        self._modified(pod)
        if not pod.node_lost:
            self._spawn(self._graceful_kill(pod, grace))
        return web.json_response(pod.obj)

    def _selected(self, request: web.Request) -> Callable[[Mapping[str, Any]], bool]:
        labels = label_matcher(request.query.get("labelSelector", ""))
        fields = field_selector(request.query.get("fieldSelector", ""))
        ns = request.match_info.get("namespace")
        return lambda obj: (
            (ns is None or obj["metadata"]["namespace"] == ns)
            and labels(obj["metadata"].get("labels") or {})
            and fields(obj)
        )

    async def _list_pods(self, request: web.Request) -> web.StreamResponse:
        selected = self._selected(request)
        q = request.query
        if flag(q, "watch"):
            return await self._watch(request, selected)
        rv = q.get("resourceVersion", "")
        if rv not in ("", "0") and int_param(rv, "resourceVersion") > self._rv:
            raise ApiError(
                504, "Timeout", f"Too large resource version: {rv}, current: {self._rv}", {"retryAfterSeconds": 1}
            )
        list_rv, after = self._rv, ("", "")
        objects = {key: p.obj for key, p in self._pods.items()}
        if q.get("continue"):
            list_rv, after = decode_continue(q["continue"])
            if list_rv < self._compacted:
                raise ApiError(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start "
                    "a new list without the continue parameter.",
                )
            objects = self._state_at(list_rv)
        items = [obj for key, obj in sorted(objects.items()) if key > after and selected(obj)]
        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        limit = int_param(q["limit"], "limit") if q.get("limit") else 0
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            metadata["continue"] = encode_continue(list_rv, (last["namespace"], last["name"]))
            if not q.get("labelSelector") and not q.get("fieldSelector"):
                metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        items = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for obj in items]
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": items})

    def _state_at(self, rv: int) -> dict[tuple[str, str], dict[str, Any]]:
        """The pods as they were at `rv` (within the watch window): undo the later events, newest first."""
        objects = {key: p.obj for key, p in self._pods.items()}
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            key = (event.obj["metadata"]["namespace"], event.obj["metadata"]["name"])
            if event.prev is None:
                objects.pop(key, None)
            else:
                objects[key] = event.prev
        return objects

    async def _watch(self, request: web.Request, selected: Callable[[Mapping[str, Any]], bool]) -> web.StreamResponse:
        rv_text = request.query.get("resourceVersion", "")
        since = int_param(rv_text, "resourceVersion") if rv_text not in ("", "0") else None
        timeout = float(request.query["timeoutSeconds"]) if request.query.get("timeoutSeconds") else None
        bookmarks = flag(request.query, "allowWatchBookmarks")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(type_: str, obj: Mapping[str, Any]) -> None:
            await response.write(json.dumps({"type": type_, "object": obj}).encode() + b"\n")

        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        # Snapshot and subscription in one step of the loop: nothing slips between them.
        if since is None:
            backlog = [Event("ADDED", self._rv, copy.deepcopy(p.obj)) for _, p in sorted(self._pods.items())]
        elif since < self._compacted:
            status = status_object(410, "Expired", f"too old resource version: {since} ({self._compacted})")
            with contextlib.suppress(ConnectionError):
                await send("ERROR", status)
                await response.write_eof()
            return response
        else:
            backlog = [e for e in self._history if e.rv > since]
        self._watchers.add(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        try:
            with track_stream(self._server), contextlib.suppress(ConnectionError):
                for old in backlog:
                    if seen := old.as_seen_by(selected):
                        await send(*seen)
                while True:
                    wait = self.bookmark_interval if bookmarks else None
                    if deadline is not None:
                        left = deadline - loop.time()
                        if left <= 0:
                            break
                        wait = min(wait, left) if wait is not None else left
                    try:
                        event: Event | None = await asyncio.wait_for(queue.get(), wait)
                    except TimeoutError:
                        if bookmarks:
                            bookmark = {
                                "kind": "Pod",
                                "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(self._rv)},
                            }
                            await send("BOOKMARK", bookmark)
                        continue
                    if event is None:  # the window expired: the watch is cut
                        return response
                    if seen := event.as_seen_by(selected):
                        await send(*seen)
                await response.write_eof()
        finally:
            self._watchers.discard(queue)
        return response

    async def _pod_log(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        pod = self._get(ns, name)
        containers = [c["name"] for c in pod.obj["spec"]["containers"]]
        container = request.query.get("container") or containers[0]
        if container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if flag(request.query, "previous"):
            raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found')
        if pod.node_lost:
            raise ApiError(
                500,
                "InternalError",
                f'Get "https://{HOST_IP}:10250/containerLog/{ns}/{name}/{container}": dial tcp {HOST_IP}:10250: '
                "connect: no route to host",
            )
        if pod.obj["spec"].get("nodeName") and not pod.started:
            waiting = (pod.obj["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("waiting", {})
            reason = waiting.get("reason", "ContainerCreating")
            why = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"}
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: {why.get(reason, reason)}',
            )
        q = request.query
        follow = flag(q, "follow")
        timestamps = flag(q, "timestamps")
        since: datetime | None = None
        if q.get("sinceTime"):
            since = parse_ts(q["sinceTime"])
        elif q.get("sinceSeconds"):
            since = now() - timedelta(seconds=int_param(q["sinceSeconds"], "sinceSeconds"))
        limit = int_param(q["limitBytes"], "limitBytes") if q.get("limitBytes") else None
        start = 0
        if since is not None:
            start = next((i for i, (t, _) in enumerate(pod.log) if t >= since), len(pod.log))
        if q.get("tailLines"):
            start = max(start, len(pod.log) - int_param(q["tailLines"], "tailLines"))
        sent = 0

        def chunk(lines: list[tuple[datetime, bytes]]) -> bytes:
            nonlocal sent
            data = b"".join(
                (t.strftime("%Y-%m-%dT%H:%M:%S.%f000Z ").encode() if timestamps else b"") + line for t, line in lines
            )
            if limit is not None:
                data = data[: max(0, limit - sent)]
            sent += len(data)
            return data

        if not follow:
            return web.Response(body=chunk(pod.log[start:]), content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with track_stream(self._server), contextlib.suppress(ConnectionError):
            while True:
                signal_ = pod.log_signal
                end = len(pod.log)
                if end > start:
                    await response.write(chunk(pod.log[start:end]))
                    start = end
                if pod.output_done or pod.gone or pod.node_lost or (limit is not None and sent >= limit):
                    break
                await signal_.wait()
            await response.write_eof()
        return response


def main(argv: list[str] | None = None) -> None:
    """Serve a fake API server until interrupted: `python -m tests.fakes.kubernetes --kubeconfig PATH`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.fakes.kubernetes", description=main.__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write a kubeconfig for it")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="pods' working folders (default: a temp folder)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with FakeKubernetes(args.workdir, port=args.port) as k8s:
        k8s.write_kubeconfig(args.kubeconfig)
        print(f"fake Kubernetes API server on {k8s.url}, kubeconfig {args.kubeconfig}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
