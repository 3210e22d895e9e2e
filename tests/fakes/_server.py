"""An aiohttp server on 127.0.0.1 run in its own thread and event loop, shared by the fakes.

A fake lives in its own loop so it keeps answering while a test's loop is busy or blocked,
works from sync and async tests alike, and can be stopped and started again on the same
port (clients keep their configuration) while its state survives. Hooks called from the
test thread run inside the fake's loop through `call`, so the state has one owner.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

HOOK_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class BackgroundServer:
    """Serves `make_app()` on 127.0.0.1:`port` from a daemon thread; `stop`/`start` keep the port."""

    def __init__(self, make_app: Callable[[], web.Application], name: str) -> None:
        self._make_app = make_app
        self._name = name
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=name, daemon=True)
        self._runner: web.AppRunner | None = None
        # Streaming handlers (watches, followed logs) register here so a stop cuts them like a crash.
        self.streams: set[asyncio.Task[Any]] = set()
        self._thread.start()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def running(self) -> bool:
        return self._runner is not None

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the server's loop and return its result (or raise its exception)."""

        async def run() -> T:
            return fn()

        return self.run(run)

    def run(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the coroutine function `fn` in the server's loop, wait for it and return its result."""
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{self._name}: hooks are called from the test's thread, not from the fake's loop")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(fn(), self.loop)
        return future.result(HOOK_TIMEOUT)

    async def _start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self._make_app(), shutdown_timeout=0.5, access_log=None)
        await runner.setup()
        port = self.port
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        if not port:
            server = site._server
            assert isinstance(server, asyncio.base_events.Server)
            self.port = server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        # A crash, not a drain: open streams end at once, the listening socket closes.
        for task in list(self.streams):
            task.cancel()
        for site in list(runner.sites):
            await site.stop()
        if self.streams:
            await asyncio.wait(list(self.streams), timeout=2)
        await runner.cleanup()

    def start(self) -> None:
        self.run(self._start)

    def stop(self) -> None:
        self.run(self._stop)

    def close(self, before_stop: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Stop serving, run `before_stop` in the loop, then end the loop and its thread."""
        if self.loop.is_closed():
            return
        self.run(self._stop)
        if before_stop is not None:
            self.run(before_stop)

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(cancel_rest)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(HOOK_TIMEOUT)
        self.loop.close()


@contextlib.contextmanager
def track_stream(server: BackgroundServer) -> Iterator[None]:
    """Register the current handler task as a stream the server cuts when it stops."""
    task = asyncio.current_task()
    assert task is not None
    server.streams.add(task)
    try:
        yield
    finally:
        server.streams.discard(task)
