"""Local processes: standalone mode. One process per try, its output written to the try's log file."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from services.executor.backends.base import BackendClosed, ExecutorBackend, ExitCallback, LaunchSpec, TryKey

log = logging.getLogger(__name__)


class LocalProcessBackend(ExecutorBackend):
    name = "local"

    def __init__(self, on_exit: ExitCallback) -> None:
        super().__init__(on_exit)
        self._procs: dict[TryKey, asyncio.subprocess.Process | None] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._closing = False

    async def launch(self, spec: LaunchSpec) -> bool:
        if self._closing:
            raise BackendClosed("the executor is shutting down; the try stays queued")
        if spec.key in self._procs:
            return False
        self._procs[spec.key] = None  # claimed before the first await: a second Submit sees it
        try:
            stdout: int | object = asyncio.subprocess.DEVNULL
            log_file = None
            if spec.log_path is not None:
                spec.log_path.parent.mkdir(parents=True, exist_ok=True)
                log_file = open(spec.log_path, "ab")  # noqa: ASYNC230 - a quick local append, handed to the child
                stdout = log_file
            try:
                proc = await asyncio.create_subprocess_exec(
                    *spec.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=stdout,  # type: ignore[arg-type]
                    stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, **spec.env},
                    start_new_session=True,  # its own process group: terminate() reaches its children
                )
            finally:
                if log_file is not None:
                    log_file.close()
        except OSError:
            del self._procs[spec.key]
            raise
        self._procs[spec.key] = proc
        watcher = asyncio.create_task(self._watch(spec.key, proc), name=f"watch-{spec.key}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return True

    async def _watch(self, key: TryKey, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        self._procs.pop(key, None)
        try:
            await self._on_exit(key, code, "")
        except Exception:
            log.exception("handling the end of %s failed", key)

    def running(self) -> list[TryKey]:
        return list(self._procs)

    async def terminate(self, key: TryKey) -> None:
        proc = self._procs.get(key)
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    async def aclose(self) -> None:
        """Local tries belong to this process: stop them, and record their ends while we can."""
        self._closing = True
        for key in list(self._procs):
            await self.terminate(key)
        if self._watchers:
            await asyncio.wait(list(self._watchers), timeout=5.0)
        for proc in list(self._procs.values()):  # did not stop in time
            if proc is not None and proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._watchers:
            await asyncio.wait(list(self._watchers), timeout=5.0)
        for watcher in list(self._watchers):
            watcher.cancel()
