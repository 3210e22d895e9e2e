"""A warm parent that forks a child per job: a task try's runner, or a DAG file's parse.

A fresh interpreter spends most of a short job's time starting and importing (Spinner's SDK,
Jinja, gRPC: 150-500 ms of a core, far more on a busy machine). A service starts this server
once, naming the modules to import up front (`python -m spinner.forkserver MODULE...`), and asks
it for children over its stdin/stdout, one JSON object a line:

    -> {"id": 1, "call": "pkg.module:function", "args": [...], "env": {...}, "log": "/path",
        "cwd": "/path", "memory_mb": 1024}
    <- {"id": 1, "pid": 4242}                   the child runs (or {"id": 1, "error": "..."})
    <- {"exit": 4242, "code": 0}                 the child ended with this exit code (-N: signal N)

Each child starts its own session (so a kill of its process group reaches what it started),
gets its address-space limit (`memory_mb`, 0 for none), writes stdout and stderr to `log`, gets
`env`, changes to `cwd`, calls `function(args)` and exits with the int it returns. Nothing of the
server's state but the imported modules is shared: whatever the job imports (a DAG file, a
plugin) is imported by the child alone. The server never opens a gRPC channel or a thread (a
forked channel is unusable); each child makes its own. It exits when its stdin closes (its
service is gone); children keep running.

With `--reap-orphans` (the scheduler's parser) the server is its children's subreaper: a process a
child left in the background, even one that started a session of its own and whose parent exited
(a daemon's double fork), becomes the server's, and is killed when any child ends (spinner/reaper.py).
DAG code at parse time leaves nothing running.

`ForkServer` is a service's side: it starts the server, asks for children and reports their exits.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import resource
import selectors
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from spinner.fernet import task_environ
from spinner.processes import wait_gone
from spinner.reaper import become_subreaper, kill_orphans

log = logging.getLogger(__name__)

K = TypeVar("K")


# --- in any child --------------------------------------------------------------------------


def limit_memory(megabytes: int) -> None:
    """Caps the calling process's address space (0: no cap): an allocation past it raises MemoryError."""
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def kill_group(pid: int, sig: int = signal.SIGKILL, *, leader_ended: bool = False) -> None:
    """Signals the process group a child leads (its own session), so what it started goes too.

    A child forked a moment ago may not have called setsid yet: then there is no such group, and
    the child alone gets the signal. Once the child has ended (`leader_ended`) there is no such
    fallback: its pid may already belong to another process. A process already gone, or not ours,
    is no error.
    """
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        if leader_ended:
            return
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    except PermissionError:  # not ours (the pid was reused): leave it alone
        pass


# --- the server (its own process) --------------------------------------------------------


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the job. Never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        limit_memory(int(request.get("memory_mb") or 0))
        log_path = str(request.get("log") or "")
        fd = (
            os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if log_path
            else os.open(os.devnull, os.O_WRONLY)
        )
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})
        if request.get("cwd"):
            os.chdir(str(request["cwd"]))
        for stream in (sys.stdout, sys.stderr):  # a job's print() reaches its log line by line
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(line_buffering=True)
        module_name, _, function_name = str(request["call"]).partition(":")
        args = [str(a) for a in request.get("args") or []]
        sys.argv = [module_name, *args]
        function = getattr(importlib.import_module(module_name), function_name)
        code = int(function(args))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


REAP_ORPHANS = "--reap-orphans"


def serve(preload: Sequence[str], *, reap_orphans: bool = False) -> int:
    if reap_orphans:
        become_subreaper()
    for entry in preload:  # imported once here: every child starts with them in memory
        module_name, _, warm = entry.partition(":")
        module = importlib.import_module(module_name)
        if warm:  # "module:function": a warm-up called once, e.g. parsing a client's models
            try:
                getattr(module, warm)()
            except Exception as e:  # a warm-up saves time; its children work without it
                print(f"forkserver: warming up with {entry} failed: {e}", file=sys.stderr, flush=True)
    out = sys.stdout
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the wakeup fd
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    buffer = b""
    children: set[int] = set()

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    def reap() -> None:
        ended = False
        while children or reap_orphans:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in children:  # else an orphan it adopted (and killed), reaped here
                children.discard(pid)
                ended = True
                send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})
        if ended and reap_orphans:
            kill_orphans(children)

    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "wake":
                os.read(wake_r, 512)
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:  # the service is gone
                if reap_orphans:
                    kill_orphans(children)
                return 0
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as e:
                    send({"id": request["id"], "error": str(e)})
                    continue
                if pid == 0:
                    sel.close()
                    _child(request)
                children.add(pid)
                send({"id": request["id"], "pid": pid})
        reap()
        if reap_orphans and not children:  # one adopted after its parse's end, with no parse since
            kill_orphans(children)


# --- a service's side -------------------------------------------------------------------


SLOW_AFTER = 30.0  # seconds without an answer before a spawn says the fork server is slow
HUNG_AFTER = 300.0  # seconds without an answer before the fork server is taken for hung and killed


class ForkServer(Generic[K]):
    """Starts the server on first use (again if it died), asks it for children, reports their exits.

    `on_child_exit(key, code, pid)` is called once per child, with code -1 when the server died
    before the child ended (the child is then watched until it is gone). After `aclose` it is called
    no more: the children that still run are left to whoever comes next (an executor adopts them).
    """

    def __init__(
        self,
        preload: Sequence[str],
        on_child_exit: Callable[[K, int, int], Awaitable[None]],
        *,
        reap_orphans: bool = False,
    ) -> None:
        """`reap_orphans`: what a child leaves running is killed when a child ends (see the module)."""
        self.slow_after = SLOW_AFTER
        self.hung_after = HUNG_AFTER
        self._args = [*([REAP_ORPHANS] if reap_orphans else []), *preload]
        self._on_child_exit = on_child_exit
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, tuple[asyncio.Future[int], K]] = {}
        self._next_id = 0
        self._lock = asyncio.Lock()
        self._outliving: set[asyncio.Task[None]] = set()
        self._closed = False
        # Known the moment the pid arrives, before the spawn resumes: an exit right after is never lost.
        self.children: dict[int, K] = {}

    async def _ensure(self) -> asyncio.subprocess.Process:
        async with self._lock:
            if self._proc is None or self._proc.returncode is not None:
                self._proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "spinner.forkserver", *self._args,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    limit=1 << 20, env=task_environ(),  # its children run DAG code: no platform secrets
                )  # fmt: skip
                self._reader = asyncio.create_task(self._read(self._proc), name="forkserver-reader")
            return self._proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            message = json.loads(line)
            if "exit" in message:
                pid = int(message["exit"])
                key = self.children.pop(pid, None)
                if key is not None:
                    await self._on_child_exit(key, int(message["code"]), pid)
            elif (pending := self._pending.pop(int(message["id"]), None)) is not None:
                future, key = pending
                if "pid" in message:
                    self.children[int(message["pid"])] = key
                    if not future.done():
                        future.set_result(int(message["pid"]))
                elif not future.done():
                    future.set_exception(OSError(message.get("error", "fork failed")))
        for future, _ in self._pending.values():  # the server died: those spawns did not happen
            if not future.done():
                future.set_exception(OSError("the fork server stopped"))
        self._pending.clear()
        orphans, self.children = dict(self.children), {}
        if self._closed:
            return
        for pid, key in orphans.items():  # no longer children it can reap: watch them until they are gone
            task = asyncio.create_task(self._outlive(pid, key))
            self._outliving.add(task)
            task.add_done_callback(self._outliving.discard)

    async def _outlive(self, pid: int, key: K) -> None:
        await wait_gone(pid)
        await self._on_child_exit(key, -1, pid)

    async def spawn(
        self,
        key: K,
        call: str,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        log_path: str = "",
        cwd: str = "",
        memory_mb: int = 0,
    ) -> int:
        """Forks a child that runs `call(args)`; returns its pid. OSError or TimeoutError when it cannot."""
        proc = await self._ensure()
        assert proc.stdin is not None
        self._next_id += 1
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = (future, key)
        request = {"id": self._next_id, "call": call, "args": list(args), "env": env or {}, "log": log_path,
                   "cwd": cwd, "memory_mb": memory_mb}  # fmt: skip
        proc.stdin.write((json.dumps(request) + "\n").encode())
        await proc.stdin.drain()
        return await self._answer(future, proc)

    async def _answer(self, future: asyncio.Future[int], proc: asyncio.subprocess.Process) -> int:
        """The pid, once the server has forked. A slow server (a machine at a load of 80) is waited for: a
        request given up on would still be forked later, a second runner of the same try beside the fresh
        process that replaced it, each fresh process costing a hundred forks' CPU. A server silent for
        `hung_after` seconds is killed: the reader then answers from what it had read, or OSError."""
        waited = 0.0
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(future), self.slow_after)
            except TimeoutError:
                waited += self.slow_after
            if waited >= self.hung_after and proc.returncode is None:
                log.error("the fork server has not answered for %.0f s: stopping it (it starts again)", waited)
                proc.kill()
                return await future
            log.warning("the fork server has not answered for %.0f s; waiting for it (is the machine busy?)", waited)

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._outliving):
            task.cancel()
        if self._proc is not None and self._proc.returncode is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    raise SystemExit(serve([a for a in args if a != REAP_ORPHANS], reap_orphans=REAP_ORPHANS in args))
