"""Local processes: standalone mode. One process per try, its output written to the try's log file.

The runner is told that file (SPINNER_LOG_PATH) and marks it complete as its last act, so the log
is whole even when this executor was restarted while the try ran and never saw the process end.

Runners are forked from a warm fork server (spinner/forkserver.py) that has imported the
runner once, so a try starts in milliseconds instead of paying an interpreter's start and imports.
Anything that is not a runner, or any launch while the fork server is unavailable, gets a fresh
process as before.

Where the executor runs as root, a try runs as the DAG user (`dag_user`, spinner/sandbox.py) under a
keeper that stays root (spinner/runner/keeper.py): the keeper is the process this backend starts,
watches and signals, and the one the runner names at Start.

Runners outlive their executor (a fork server's children keep running when it exits). A restarted
executor adopts them: those the database says it started (their pid, if that is still the process
that started the try, spinner/processes.py), and any that start after it came back (their Start
names their pid). It watches them until they are gone; their own reports carry on as before.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace

from services.executor.backends.base import (
    EXIT_UNKNOWN,
    BackendClosed,
    ExecutorBackend,
    ExitCallback,
    LaunchSpec,
    PreviousTry,
    TryKey,
)
from spinner.fernet import task_environ
from spinner.forkserver import ForkServer, kill_group
from spinner.logpaths import LOG_PATH_ENV
from spinner.processes import is_same_process, wait_gone
from spinner.runner import keeper
from spinner.sandbox import DagUser

log = logging.getLogger(__name__)


RUNNER_MODULE = ["-m", "spinner.runner"]
# Everything a runner imports, imported once by the fork server: children start with it in memory.
RUNNER_PRELOAD = [
    "spinner.config", "spinner.runner.keeper", "spinner.runner.main", "spinner.sdk.loader", "spinner.sdk.templating",
]  # fmt: skip

S3_WARM = "spinner.bundles:warm_s3"  # a fork server entry: import, then call (spinner/forkserver.py)


class LocalProcessBackend(ExecutorBackend):
    name = "local"
    adopts = True

    def __init__(
        self,
        on_exit: ExitCallback,
        *,
        fork_server: bool = True,
        keep_on_stop: bool = True,
        user: DagUser | None = None,
        archive_logs: bool = False,
    ) -> None:
        """`archive_logs`: runners archive their log to S3 (logs_bucket): the fork server parses the S3 client's
        models once, which every runner did before (most of its CPU; docs/benchmarks.md)."""
        super().__init__(on_exit)
        self._user = user  # None: tries run as this executor's user (their environment scrubbed all the same)
        self._keep_on_stop = keep_on_stop
        self._procs: dict[TryKey, subprocess.Popen[bytes] | int | None] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._closing = False
        self._fork_server: ForkServer[TryKey] | None = (
            ForkServer([*RUNNER_PRELOAD, *([S3_WARM] if archive_logs else [])], self._forked_exit)
            if fork_server
            else None
        )

    async def _forked_exit(self, key: TryKey, code: int, pid: int) -> None:
        self._procs.pop(key, None)
        try:
            await self._on_exit(key, code, "", pid)
        except Exception:
            log.exception("handling the end of %s failed", key)

    async def start(self, previous: Sequence[PreviousTry] = ()) -> list[TryKey]:
        """Adopts the runners of `previous` that still run on this host."""
        host = socket.gethostname()
        adopted = []
        for p in previous:
            if p.hostname == host and p.pid is not None and is_same_process(p.pid, p.start_date):
                self._adopt(p.key, p.pid)
                adopted.append(p.key)
        return adopted

    def adopt_started(self, key: TryKey, hostname: str, pid: int) -> bool:
        if key in self._procs:
            return True
        if self._closing or hostname != socket.gethostname() or not is_same_process(pid, None):
            return False
        self._adopt(key, pid)
        log.info("adopted %s (pid %d): it started after this executor did", key.describe(), pid)
        return True

    def _adopt(self, key: TryKey, pid: int) -> None:
        self._procs[key] = pid
        watcher = asyncio.create_task(self._watch_adopted(key, pid), name=f"watch-adopted-{key}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch_adopted(self, key: TryKey, pid: int) -> None:
        await wait_gone(pid)
        self._procs.pop(key, None)
        try:
            await self._on_exit(key, EXIT_UNKNOWN, "", pid)  # not our child: its exit code is not ours to know
        except Exception:
            log.exception("handling the end of %s failed", key)

    async def _fork(self, spec: LaunchSpec) -> bool:
        """Through the fork server; False when it cannot (the caller starts a fresh process)."""
        if self._fork_server is None or spec.argv[1:3] != RUNNER_MODULE or spec.argv[0] != sys.executable:
            return False
        try:
            call, args = "spinner.runner.main:main", spec.argv[3:]
            if self._user is not None:  # the child is the try's keeper; its own child is the runner
                call, args = "spinner.runner.keeper:main", [self._user.spec(), *spec.argv]
            pid = await self._fork_server.spawn(
                spec.key, call, args, env=spec.env, log_path=str(spec.log_path) if spec.log_path is not None else ""
            )
        except (OSError, TimeoutError, ValueError) as e:
            log.warning("fork server unavailable (%s); starting %s in a fresh process", e, spec.key)
            return False
        if spec.key in self._procs:  # it may have ended already
            self._procs[spec.key] = pid
        return True

    async def launch(self, spec: LaunchSpec) -> bool:
        if self._closing:
            raise BackendClosed("the executor is shutting down; the try stays queued")
        if spec.key in self._procs:
            return False
        if spec.log_path is not None:  # the runner marks its log complete itself (spinner/runner/completion.py)
            spec = replace(spec, env={**spec.env, LOG_PATH_ENV: str(spec.log_path)})
        self._procs[spec.key] = None  # claimed before the first await: a second Submit sees it
        if spec.log_path is not None:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if await self._fork(spec):
                return True
        except BaseException:
            self._procs.pop(spec.key, None)
            raise
        try:
            proc = self._spawn(spec)
        except OSError:
            del self._procs[spec.key]
            raise
        self._procs[spec.key] = proc
        watcher = asyncio.create_task(self._watch(spec.key, proc), name=f"watch-{spec.key}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return True

    def _spawn(self, spec: LaunchSpec) -> subprocess.Popen[bytes]:
        """A fresh process (under a keeper where there is a DAG user). Popen, not asyncio's: an asyncio
        transport kills its child when it is closed, and a runner must be able to outlive this executor."""
        argv = keeper.argv_for(self._user, spec.argv) if self._user is not None else list(spec.argv)
        log_file = None
        try:
            if spec.log_path is not None:
                log_file = open(spec.log_path, "ab")  # a quick local append, handed to the child
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file if log_file is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                env={**task_environ(), **spec.env},  # never the platform's secrets
                start_new_session=True,  # its own process group: terminate() reaches its children
            )
        finally:
            if log_file is not None:
                log_file.close()

    async def _watch(self, key: TryKey, proc: subprocess.Popen[bytes]) -> None:
        await wait_gone(proc.pid)  # exited (a zombie until the wait below reaps it)
        code = proc.wait()
        self._procs.pop(key, None)
        try:
            await self._on_exit(key, code, "", proc.pid)
        except Exception:
            log.exception("handling the end of %s failed", key)

    def running(self) -> list[TryKey]:
        return list(self._procs)

    def is_running(self, key: TryKey) -> bool:
        return key in self._procs

    @staticmethod
    def _pid(proc: subprocess.Popen[bytes] | int | None) -> int | None:
        if isinstance(proc, int):
            return proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def terminate(self, key: TryKey) -> None:
        pid = self._pid(self._procs.get(key))
        if pid is not None:
            kill_group(pid, signal.SIGTERM)

    async def aclose(self) -> None:
        """Leaves the tries running for the next executor to adopt (`keep_on_stop`), or stops them and
        records their ends while it can."""
        self._closing = True
        if self._keep_on_stop:
            await self._leave()
            return
        for key in list(self._procs):
            await self.terminate(key)
        deadline = asyncio.get_running_loop().time() + 5.0
        while self._procs and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # ends arrive through the watchers and the fork server
        for proc in list(self._procs.values()):  # did not stop in time
            pid = self._pid(proc)
            if pid is not None:
                kill_group(pid, signal.SIGKILL)
        if self._watchers:
            await asyncio.wait(list(self._watchers), timeout=5.0)
        for watcher in list(self._watchers):
            watcher.cancel()
        if self._fork_server is not None:
            await self._fork_server.aclose()

    async def _leave(self) -> None:
        """A restart (an upgrade, a Ctrl-C of standalone) neither kills nor fails what runs: the runners
        keep their own sessions, finish, and report to whichever executor answers next on this port."""
        if self._procs:
            log.info(
                "%d local tries keep running; the next executor on this host adopts them: %s",
                len(self._procs), ", ".join(sorted(k.describe() for k in self._procs)),
            )  # fmt: skip
        for watcher in list(self._watchers):
            watcher.cancel()
        if self._watchers:
            await asyncio.wait(list(self._watchers), timeout=5.0)
        if self._fork_server is not None:
            await self._fork_server.aclose()  # its children keep running (spinner/forkserver.py)
