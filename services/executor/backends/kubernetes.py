"""Kubernetes: one pod per task try, watched until it ends, then deleted.

- launch: creates the try's pod (name from pod_spec.pod_name, the same on every attempt, so a
  create that finds the pod already there counts as launched and no try ever gets two pods).
- watch: list the executor's pods by label, then watch from that resourceVersion; a 410 Gone
  (the API server no longer has that version) is answered by listing again, and every pod in
  the new list is looked at as it is now, so a transition missed in between is still seen.
- ends: Succeeded/Failed pods, pods whose container is OOMKilled, evicted pods, pods on a lost
  node, image pull failures and pods pending longer than `pending_timeout` end their try with
  a reason the UI shows (through the executor's `on_exit`). The pod's log is copied to the
  try's local log, then the pod is deleted (kept on failure when `keep_failed_pods`).
- restart: `start()` lists the executor's pods and adopts those still running; the executor
  then fails or retries the tries whose pods are gone. An adopted pod's log is copied to the try's
  local log too (`log_path`), unless that log was already closed (its `.complete` marker) by the
  executor that saw the pod end before it stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from services.executor.backends.base import (
    BackendClosed,
    ExecutorBackend,
    ExitCallback,
    LaunchSpec,
    PreviousTry,
    TryKey,
)
from services.executor.pod_spec import PodSettings, build_pod, key_of, label_value
from spinner.kube import core_api, pod_name
from spinner.logpaths import complete_marker
from spinner.podpolicy import LABEL_PREFIX

log = logging.getLogger(__name__)

IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


@dataclass(frozen=True)
class KubernetesSettings:
    pod: PodSettings = field(default_factory=PodSettings)
    kubeconfig: str = ""  # empty: in-cluster service account
    pending_timeout: float = 300.0
    keep_failed_pods: bool = False
    watch_timeout: int = 60  # seconds a watch request stays open before it is renewed


@dataclass
class _Tracked:
    key: TryKey
    name: str
    log_path: Path | None = None
    created: dt.datetime | None = None
    ended: bool = False


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_outcome(pod: dict[str, Any], pending_for: float, pending_timeout: float) -> tuple[int, str] | None:
    """(exit code, reason) when the pod's try has ended, else None. Reason is empty for a plain exit."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    reason = status.get("reason") or ""
    message = status.get("message") or ""
    containers = status.get("containerStatuses") or []
    state = (containers[0].get("state") or {}) if containers else {}
    terminated = state.get("terminated") or {}
    waiting = state.get("waiting") or {}
    if reason == "Evicted":
        return 137, f"The pod was evicted: {message or 'the node ran short of resources'}"
    if reason == "NodeLost" or phase == "Unknown":
        return 137, f"The pod's node was lost: {message or 'the node stopped reporting'}"
    if terminated.get("reason") == "OOMKilled":
        return int(terminated.get("exitCode") or 137), "OOMKilled: the task used more memory than its limit"
    if phase in ("Succeeded", "Failed"):
        code = int(terminated.get("exitCode", 0 if phase == "Succeeded" else 1))
        if phase == "Failed" and terminated.get("reason") not in (None, "", "Error", "Completed"):
            return code, f"The pod failed: {terminated['reason']} {terminated.get('message') or ''}".strip()
        if phase == "Failed" and reason:
            return code or 1, f"The pod failed: {reason} {message}".strip()
        return code, ""
    if phase == "Pending":
        if waiting.get("reason") in IMAGE_PULL_REASONS:
            return 1, f"Image pull failed ({waiting['reason']}): {waiting.get('message') or ''}".strip()
        if waiting.get("reason") in CONFIG_REASONS:
            return 1, f"The container could not start ({waiting['reason']}): {waiting.get('message') or ''}".strip()
        if pending_for > pending_timeout:
            why = "; ".join(
                f"{c.get('reason')}: {c.get('message')}"
                for c in status.get("conditions") or []
                if c.get("status") == "False" and c.get("reason")
            )
            return 1, f"The pod was pending for more than {pending_timeout:g} s" + (f" ({why})" if why else "")
    return None


class KubernetesBackend(ExecutorBackend):
    name = "kubernetes"
    noun = "pod"
    adopts = True

    def __init__(
        self,
        on_exit: ExitCallback,
        settings: KubernetesSettings,
        *,
        clock: Callable[[], dt.datetime] = _now,
        log_path: Callable[[TryKey], Path] | None = None,
    ) -> None:
        """`log_path`: the local log of a try, for pods this backend adopts (a launched pod's comes with it)."""
        super().__init__(on_exit)
        self.settings = settings
        self._clock = clock
        self._log_path = log_path
        self._api: client.ApiClient | None = None
        self._v1: client.CoreV1Api | None = None
        self._tracked: dict[TryKey, _Tracked] = {}
        self._deleting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._pending: asyncio.Task[None] | None = None
        self._closing = False
        self._launching = 0  # pod creations in flight: aclose lets them be answered before it closes the client
        self._launched = asyncio.Event()
        self._launched.set()
        self.synced = asyncio.Event()  # the first list is done: running() is complete
        self.relists = 0

    @property
    def _selector(self) -> str:
        return f"{LABEL_PREFIX}executor={label_value(self.settings.pod.executor_name)}"

    async def _core(self) -> client.CoreV1Api:
        if self._v1 is None:
            api, v1 = await core_api(self.settings.kubeconfig)
            self._api = cast(client.ApiClient, api)
            self._v1 = cast(client.CoreV1Api, v1)
        return self._v1

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, previous: Sequence[PreviousTry] = ()) -> list[TryKey]:
        """Lists this executor's pods, adopts the live ones and starts watching. Returns the adopted tries."""
        rv = await self._relist()
        self._watcher = asyncio.create_task(self._watch_forever(rv), name="kubernetes-watch")
        self._pending = asyncio.create_task(self._pending_loop(), name="kubernetes-pending")
        self.synced.set()
        return [k for k, t in self._tracked.items() if not t.ended]

    async def aclose(self) -> None:
        """Stops watching. Pods keep running: a new executor adopts them."""
        self._closing = True
        loops = [t for t in (self._watcher, self._pending) if t is not None]
        for t in loops:
            t.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        try:  # a creation cut off here would be counted as not launched although its pod is made
            await asyncio.wait_for(self._launched.wait(), 30)
        except TimeoutError:
            log.warning(
                "closing with %d pod creation(s) unanswered: the next executor adopts their pods", self._launching
            )
        if self._api is not None:
            await self._api.close()

    # --- the interface -------------------------------------------------------------------

    async def launch(self, spec: LaunchSpec) -> bool:
        if self._closing:
            raise BackendClosed("the executor is shutting down; the try stays queued")
        if spec.key in self._tracked:
            return False
        manifest = build_pod(
            spec.key,
            partition=spec.partition,
            argv=spec.argv,
            env=spec.env,
            config=spec.executor_config,
            settings=self.settings.pod,
        )  # raises PodSpecError before any request
        name = manifest["metadata"]["name"]
        self._tracked[spec.key] = _Tracked(spec.key, name, spec.log_path, self._clock())
        self._launching += 1
        self._launched.clear()
        try:
            v1 = await self._core()
            await v1.create_namespaced_pod(self.settings.pod.namespace, cast(Any, manifest))
        except ApiException as e:
            if e.status == 409:  # created by an earlier attempt (or before a restart): it is launched
                log.info("pod %s already exists: counted as launched", name)
                return True
            del self._tracked[spec.key]
            raise
        except BaseException:
            del self._tracked[spec.key]
            raise
        finally:
            self._launching -= 1
            if not self._launching:
                self._launched.set()
        log.info("created pod %s for %s", name, spec.key)
        return True

    def running(self) -> list[TryKey]:
        return [k for k, t in self._tracked.items() if not t.ended]

    def is_running(self, key: TryKey) -> bool:
        tracked = self._tracked.get(key)
        return tracked is not None and not tracked.ended

    async def terminate(self, key: TryKey) -> None:
        tracked = self._tracked.get(key)
        if tracked is not None:
            await self._delete(tracked.name)

    # --- watching ------------------------------------------------------------------------

    async def _relist(self) -> str:
        """Lists the executor's pods and looks at each as it is now. Returns the list's resourceVersion."""
        v1 = await self._core()
        listing: Any = await v1.list_namespaced_pod(
            self.settings.pod.namespace, label_selector=self._selector, _preload_content=False
        )
        body = await listing.json()
        listing.release()
        self.relists += 1
        seen: set[TryKey] = set()
        for pod in body.get("items") or []:
            key = key_of(pod)
            if key is not None:
                seen.add(key)
                await self._on_pod("LISTED", pod)
        for key, tracked in list(self._tracked.items()):
            if key not in seen and not tracked.ended and tracked.created and self._age(tracked) > 5:
                self._end(tracked, 137, "The pod disappeared (deleted outside Spinner)")
        return str((body.get("metadata") or {}).get("resourceVersion") or "")

    def _age(self, tracked: _Tracked) -> float:
        return (self._clock() - tracked.created).total_seconds() if tracked.created else 0.0

    async def _watch_forever(self, rv: str) -> None:
        v1 = await self._core()
        backoff = 0.2
        while not self._closing:
            try:
                async with watch.Watch() as w:
                    stream = w.stream(
                        v1.list_namespaced_pod,
                        self.settings.pod.namespace,
                        label_selector=self._selector,
                        resource_version=rv,
                        timeout_seconds=self.settings.watch_timeout,
                        allow_watch_bookmarks=True,
                    )
                    async for event in stream:
                        raw = event.get("raw_object") or {}
                        rv = str((raw.get("metadata") or {}).get("resourceVersion") or rv)
                        if event.get("type") != "BOOKMARK":
                            await self._on_pod(str(event.get("type")), raw)
                        backoff = 0.2
            except ApiException as e:
                if e.status == 410:  # too old: list again, and look at every pod as it is now
                    log.info("pod watch expired (410 Gone); listing again")
                    rv = await self._relist_with_retry()
                    continue
                log.warning("pod watch failed (%s); retrying", e.status)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the API server is away: keep trying, nothing is lost (we list again)
                log.warning("pod watch interrupted (%s: %s); retrying", type(e).__name__, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                rv = await self._relist_with_retry()

    async def _relist_with_retry(self) -> str:
        delay = 0.2
        while True:
            try:
                return await self._relist()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("listing pods failed (%s); retrying", e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _pending_loop(self) -> None:
        """No event comes when a pod merely stays pending: look again at those past their timeout."""
        period = max(0.2, min(5.0, self.settings.pending_timeout / 4))
        while not self._closing:
            await asyncio.sleep(period)
            try:
                await self._check_pending()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("checking pending pods failed: %s", e)

    async def _check_pending(self) -> None:
        v1 = await self._core()
        for tracked in list(self._tracked.values()):
            if not tracked.ended and self._age(tracked) > self.settings.pending_timeout:
                try:
                    resp: Any = await v1.read_namespaced_pod(
                        tracked.name, self.settings.pod.namespace, _preload_content=False
                    )
                    pod = await resp.json()
                    resp.release()
                except ApiException as e:
                    if e.status == 404:
                        self._end(tracked, 137, "The pod disappeared (deleted outside Spinner)")
                    continue
                await self._on_pod("CHECKED", pod)

    async def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        key = key_of(pod)
        if key is None:
            return
        meta = pod.get("metadata") or {}
        name = str(meta.get("name") or pod_name(key))
        tracked = self._tracked.get(key)
        if tracked is None:
            if kind == "DELETED":
                return
            created = _parse_time(meta.get("creationTimestamp")) or self._clock()
            path = self._log_path(key) if self._log_path is not None else None
            tracked = self._tracked[key] = _Tracked(key, name, path, created)
            log.info("adopted pod %s (%s)", name, key)
        if tracked.ended:
            if kind == "DELETED":
                self._tracked.pop(key, None)
                self._deleting.discard(name)
            return
        if kind == "DELETED":
            if name in self._deleting:
                self._tracked.pop(key, None)
                self._deleting.discard(name)
                self._end(tracked, 143, "The task was stopped: its pod was deleted", delete=False)
            else:
                self._end(tracked, 137, "The pod was deleted outside Spinner", delete=False)
            return
        pending_for = (self._clock() - tracked.created).total_seconds() if tracked.created else 0.0
        outcome = pod_outcome(pod, pending_for, self.settings.pending_timeout)
        if outcome is not None:
            self._end(tracked, *outcome)

    def _end(self, tracked: _Tracked, code: int, reason: str, *, delete: bool = True) -> None:
        tracked.ended = True
        task = asyncio.create_task(self._finish(tracked, code, reason, delete), name=f"pod-end-{tracked.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, tracked: _Tracked, code: int, reason: str, delete: bool) -> None:
        if reason:
            log.warning("pod %s of %s ended: %s", tracked.name, tracked.key, reason)
        if delete:
            await self._copy_log(tracked)
        try:
            await self._on_exit(tracked.key, code, reason)
        except Exception:
            log.exception("handling the end of %s failed", tracked.key)
        if delete and not (self.settings.keep_failed_pods and (code != 0 or reason)):
            await self._delete(tracked.name)
        elif not delete:
            self._tracked.pop(tracked.key, None)

    async def _copy_log(self, tracked: _Tracked) -> None:
        """The pod's output into the try's local log, for the logs service (best effort)."""
        if tracked.log_path is None:
            return
        try:
            v1 = await self._core()
            text = await v1.read_namespaced_pod_log(tracked.name, self.settings.pod.namespace)
        except Exception as e:
            log.info("could not read the log of pod %s: %s", tracked.name, e)
            return
        path = tracked.log_path

        def write() -> None:
            if complete_marker(path).exists():  # closed by the executor that saw the end before it stopped
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(str(text))

        await asyncio.to_thread(write)

    async def _delete(self, name: str) -> None:
        self._deleting.add(name)
        try:
            v1 = await self._core()
            await v1.delete_namespaced_pod(name, self.settings.pod.namespace, grace_period_seconds=5)
        except ApiException as e:
            if e.status != 404:
                log.warning("could not delete pod %s: %s", name, e.reason)
        except Exception as e:
            log.warning("could not delete pod %s: %s", name, e)
