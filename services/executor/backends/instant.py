"""A backend whose tries succeed at once, without a process: for benchmarks of the control plane.

Each launch goes through the executor's real runner API path (token, guarded Start and
Finish), so everything but the task itself is what production does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.executor.backends.base import BackendClosed, ExecutorBackend, ExitCallback, LaunchSpec, TryKey

log = logging.getLogger(__name__)

RunInstantly = Callable[[TryKey], Awaitable[None]]


class InstantBackend(ExecutorBackend):
    name = "instant"

    def __init__(self, on_exit: ExitCallback, run: RunInstantly) -> None:
        super().__init__(on_exit)
        self._run = run
        self._running: dict[TryKey, asyncio.Task[None]] = {}
        self._closing = False

    async def launch(self, spec: LaunchSpec) -> bool:
        if self._closing:
            raise BackendClosed("the executor is shutting down; the try stays queued")
        if spec.key in self._running:
            return False
        task = asyncio.create_task(self._go(spec.key), name=f"instant-{spec.key}")
        self._running[spec.key] = task
        return True

    async def _go(self, key: TryKey) -> None:
        try:
            await self._run(key)
        except Exception:
            log.exception("instant try %s failed", key)
        finally:
            self._running.pop(key, None)

    def running(self) -> list[TryKey]:
        return list(self._running)

    def is_running(self, key: TryKey) -> bool:
        return key in self._running

    async def terminate(self, key: TryKey) -> None:
        task = self._running.get(key)
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        self._closing = True
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
