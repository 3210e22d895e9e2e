"""A running try's log, live from its pod through the Kubernetes API (the kubelet's copy of stdout)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from services.logs.sources.base import Line, LogChunk, SourceMissing, SourceUnavailable, State, split_lines, window
from spinner.kube import core_api, pod_name
from spinner.tasklog import LogId, SectionTracker

ENDED_PHASES = ("Succeeded", "Failed")
CONTAINER = "task"  # the executor's pod spec names the runner's container so


class PodSource:
    name = "pod"

    def __init__(self, kubeconfig: str, namespace: str, *, request_timeout: float = 10.0) -> None:
        self._kubeconfig = kubeconfig
        self._namespace = namespace
        self._timeout = request_timeout
        self._api: Any = None
        self._v1: Any = None
        self._lock = asyncio.Lock()

    async def _core(self) -> Any:
        async with self._lock:
            if self._v1 is None:
                try:
                    self._api, self._v1 = await core_api(self._kubeconfig)
                except Exception as e:  # no kubeconfig, not in a cluster
                    raise SourceUnavailable(f"pod: no Kubernetes API ({e})") from None
        return self._v1

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.close()

    async def _pod_phase(self, name: str) -> str:
        from kubernetes_asyncio.client.exceptions import ApiException

        v1 = await self._core()
        try:
            pod = await v1.read_namespaced_pod(name, self._namespace, _request_timeout=self._timeout)
        except ApiException as e:
            if e.status == 404:
                raise SourceMissing(f"pod: {name} not found") from None
            raise SourceUnavailable(f"pod: reading {name} failed ({e.status} {e.reason})") from None
        except (OSError, TimeoutError) as e:
            raise SourceUnavailable(f"pod: Kubernetes API unreachable ({type(e).__name__}: {e})") from None
        return str(pod.status.phase or "")

    async def read(self, key: LogId, offset: int, limit: int, state: State | None = None) -> LogChunk:
        from kubernetes_asyncio.client.exceptions import ApiException

        name = pod_name(key)
        phase = await self._pod_phase(name)
        if phase == "Pending":
            return LogChunk(lines=[], next_offset=offset, source=self.name, complete=False)
        v1 = await self._core()
        try:
            text = await v1.read_namespaced_pod_log(
                name, self._namespace, container=CONTAINER, _request_timeout=self._timeout
            )
        except ApiException as e:
            if e.status == 404:
                raise SourceMissing(f"pod: {name} not found") from None
            if e.status == 400:  # the container is waiting to start
                return LogChunk(lines=[], next_offset=offset, source=self.name, complete=False)
            raise SourceUnavailable(f"pod: reading the log of {name} failed ({e.status} {e.reason})") from None
        except (OSError, TimeoutError) as e:
            raise SourceUnavailable(f"pod: Kubernetes API unreachable ({type(e).__name__}: {e})") from None
        ended = phase in ENDED_PHASES
        texts = split_lines(str(text or ""), ended=ended)
        return window(texts, offset, limit, source=self.name, ended=ended, state=state)

    async def stream(self, key: LogId, offset: int, tracker: SectionTracker) -> AsyncIterator[list[Line]]:
        """Lines from `offset` on as the container writes them, until it ends or the stream breaks.

        `tracker` must have seen lines [0, offset). Whole lines only: a line is sent once its
        newline arrives (the last line of an ended container is left to the caller's next read).
        """
        from kubernetes_asyncio.client.exceptions import ApiException

        name = pod_name(key)
        v1 = await self._core()
        try:
            response = await v1.read_namespaced_pod_log(
                name, self._namespace, container=CONTAINER, follow=True, _preload_content=False
            )
        except ApiException as e:
            if e.status == 404:
                raise SourceMissing(f"pod: {name} not found") from None
            raise SourceUnavailable(f"pod: following the log of {name} failed ({e.status} {e.reason})") from None
        except (OSError, TimeoutError) as e:
            raise SourceUnavailable(f"pod: Kubernetes API unreachable ({type(e).__name__}: {e})") from None
        index = 0
        pending = b""
        try:
            async for data in response.content.iter_any():
                pending += data
                *complete_lines, pending = pending.split(b"\n")
                batch: list[Line] = []
                for raw in complete_lines:
                    text = raw.decode("utf-8", "replace").removesuffix("\r")
                    section = tracker.feed(text)
                    if index >= offset:
                        batch.append(Line(index, text, section))
                    index += 1
                if batch:
                    yield batch
        except (OSError, TimeoutError, asyncio.IncompleteReadError, aiohttp.ClientError) as e:
            raise SourceUnavailable(f"pod: the log stream of {name} broke ({type(e).__name__})") from None
        finally:
            response.release()
