"""Parsing one DAG file in an isolated process, with a time limit and a memory limit.

Files are parsed in children of a warm fork server (`spinner/forkserver.py`) that has imported
the SDK once: a parse costs a fork and the file's own imports, not an interpreter's start (which
on a busy two-core machine took most of a second, and made a burst of changed files queue up).
When the fork server cannot be used, a file gets a fresh `python -m
services.scheduler.parse_worker` process, as it always could. Either way the child sets its own
address-space limit before the file is imported, and a file that hangs is killed with its whole
process group; what went wrong becomes the file's import error.

What the file starts does not outlive its parse, even a daemon that left the process group (a double
fork, a session of its own): the parse's subreaper adopts it and kills it when the parse ends. That is
the fork server for its children, and a fresh worker for the parse it forks (parse_worker.py); a fresh
worker that times out gets SIGTERM first, so that it kills its parse and what it left, then its group
goes.

DAG code gets none of the platform's settings (a scrubbed environment), a working directory of its
own that is removed after the parse, and, where the platform runs as root, another user (`dag_user`,
spinner/sandbox.py): docs/adr/0010-trust-model.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spinner.fernet import task_environ
from spinner.forkserver import ForkServer, kill_group, limit_memory
from spinner.podpolicy import PodPolicy
from spinner.sandbox import DagUser

log = logging.getLogger(__name__)

RESULT_MARK = "@@SPINNER-PARSE-RESULT@@"
# What a parse imports, imported once by the fork server.
PARSE_PRELOAD = ["spinner", "spinner.sdk.loader", "spinner.sdk.serialization", "services.scheduler.parse_worker"]
KILL_WAIT = 10.0  # seconds to wait for a killed child's exit to be reported


@dataclass
class ParseResult:
    rel_path: str
    dags: list[dict[str, Any]]
    error: str | None
    # The worker timed out, died or answered garbage: perhaps the machine, not the file. Parsed again later.
    transient: bool = False


def _rel(root: Path, file: Path) -> str:
    return file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)


def _timed_out(rel: str, limit: float) -> ParseResult:
    return ParseResult(
        rel, [], f"Parsing took longer than {limit:.0f} s and was stopped (does the file loop forever?)", True
    )


def _died(rel: str, code: int | None, tail: str, memory_mb: int) -> ParseResult:
    if "MemoryError" in tail:
        return ParseResult(
            rel, [], f"Parsing used more than the {memory_mb} MB memory limit and was stopped.\n{tail}", True
        )
    return ParseResult(rel, [], f"The parser process died (exit code {code}) without a result.\n{tail}", True)


def _decoded(rel: str, text: str) -> ParseResult:
    try:
        result = json.loads(text)
        return ParseResult(rel, list(result["dags"]), result["error"])
    except (ValueError, KeyError, TypeError) as e:
        return ParseResult(rel, [], f"The parser returned malformed output: {e}", True)


def _own_cwd(base: Path, name: str, user: DagUser | None) -> Path:
    """A fresh working directory for one parse, writable by whoever runs the DAG code."""
    cwd = base / name
    cwd.mkdir(mode=0o700)
    if user is not None:
        os.chown(cwd, user.uid, user.gid)
    return cwd


async def parse_in_fresh_process(
    root: Path,
    file: Path,
    limit: float,
    memory_mb: int = 1024,
    policy: PodPolicy | None = None,
    user: DagUser | None = None,
) -> ParseResult:
    """A new interpreter for one file; a timeout, a crash, running out of memory or garbage output is an error."""
    base = Path(tempfile.mkdtemp(prefix="spinner-parse-"))
    try:
        cwd = _own_cwd(base, "cwd", user)
        return await _parse_in_fresh_process(root, file, limit, memory_mb, policy, user, cwd)
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _parse_in_fresh_process(
    root: Path, file: Path, limit: float, memory_mb: int, policy: PodPolicy | None, user: DagUser | None, cwd: Path
) -> ParseResult:
    rel = _rel(root, file)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.scheduler.parse_worker",
        str(root),
        str(file),
        (policy or PodPolicy()).to_json(),
        user.spec() if user is not None else "",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(cwd),
        env=task_environ(),  # DAG code: none of the platform's settings (the database URL, keys, home)
        preexec_fn=(lambda: limit_memory(memory_mb)) if memory_mb > 0 else None,
        start_new_session=True,  # its own process group: what the file starts is killed with it
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        await _stop(proc)
        return _timed_out(rel, limit)
    except asyncio.CancelledError:  # shutting down: leave no parser behind
        await asyncio.shield(_stop(proc))
        raise
    # A process the file started in the background does not outlive the parse.
    kill_group(proc.pid, leader_ended=True)
    text = out.decode(errors="replace")
    idx = text.rfind(RESULT_MARK)
    if idx < 0:
        return _died(rel, proc.returncode, err.decode(errors="replace")[-2000:], memory_mb)
    return _decoded(rel, text[idx + len(RESULT_MARK) :].strip())


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Stops a fresh worker: SIGTERM, on which it kills its parse and what that left running (a SIGKILL
    would leave a daemon of the parse to init), then SIGKILL to its process group."""
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        await asyncio.wait_for(proc.wait(), KILL_WAIT)
    except TimeoutError:
        log.warning("parse worker (pid %d) did not end on SIGTERM; killing its process group", proc.pid)
    kill_group(proc.pid, leader_ended=proc.returncode is not None)
    await proc.wait()


def _tail(path: Path, size: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - size, 0))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


class Parser:
    """Parses files in children of one warm fork server, started on first use. Every task's pod_override is
    checked against `pod_policy` (the default policy unless the scheduler's settings give one)."""

    def __init__(
        self, *, fork_server: bool = True, pod_policy: PodPolicy | None = None, user: DagUser | None = None
    ) -> None:
        """`user`: who DAG code runs as (None: the scheduler's own user; spinner/sandbox.py)."""
        self._policy = pod_policy or PodPolicy()
        self._server: ForkServer[int] | None = (
            ForkServer(PARSE_PRELOAD, self._exited, reap_orphans=True) if fork_server else None
        )
        self.user = user
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._next = 0
        self._dir: Path | None = None

    async def _exited(self, token: int, code: int, pid: int) -> None:
        future = self._exits.get(token)
        if future is not None and not future.done():
            future.set_result(code)

    def _workdir(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="spinner-parse-"))
        return self._dir

    async def parse(self, root: Path, file: Path, limit: float, memory_mb: int = 1024) -> ParseResult:
        if self._server is None:
            return await parse_in_fresh_process(root, file, limit, memory_mb, self._policy, self.user)
        rel = _rel(root, file)
        self._next += 1
        token = self._next
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._exits[token] = future
        workdir = self._workdir()  # root's alone (0700): the result and the log are opened before the user changes
        result_path, log_path = workdir / f"{token}.json", workdir / f"{token}.log"
        cwd = workdir / f"{token}.cwd"
        user = self.user.spec() if self.user is not None else ""
        try:
            try:
                await asyncio.to_thread(_own_cwd, workdir, cwd.name, self.user)
                args = [str(root), str(file), str(result_path), self._policy.to_json(), user]
                pid = await self._server.spawn(
                    token, "services.scheduler.parse_worker:run", args,
                    log_path=str(log_path), cwd=str(cwd), memory_mb=memory_mb,
                )  # fmt: skip
            except (OSError, TimeoutError) as e:
                log.warning("parse fork server unavailable (%s); parsing %s in a fresh process", e, rel)
                return await parse_in_fresh_process(root, file, limit, memory_mb, self._policy, self.user)
            try:
                code = await asyncio.wait_for(asyncio.shield(future), limit)
            except TimeoutError:
                kill_group(pid)  # the child leads its own session: what it started goes too
                try:
                    await asyncio.wait_for(asyncio.shield(future), KILL_WAIT)
                except TimeoutError:
                    log.warning("parser of %s (pid %d) was killed but its end was not reported", rel, pid)
                return _timed_out(rel, limit)
            except asyncio.CancelledError:  # shutting down: leave no parser behind
                kill_group(pid)
                raise
            # A process the file started in the background does not outlive the parse.
            kill_group(pid, leader_ended=True)
            return await asyncio.to_thread(self._collect, rel, result_path, log_path, code, memory_mb)
        finally:
            self._exits.pop(token, None)
            for path in (result_path, log_path):
                path.unlink(missing_ok=True)
            await asyncio.to_thread(shutil.rmtree, cwd, True)

    @staticmethod
    def _collect(rel: str, result_path: Path, log_path: Path, code: int, memory_mb: int) -> ParseResult:
        try:
            text = result_path.read_text()
        except FileNotFoundError:
            text = ""
        if not text:  # opened at the start, written at the end: the child died in between
            return _died(rel, code, _tail(log_path, 2000), memory_mb)
        return _decoded(rel, text)

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.aclose()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
