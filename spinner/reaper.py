"""Killing what a job left running, even a daemon: a child subreaper adopts what its children orphan.

A process that daemonizes (a double fork, a session of its own) leaves its parent's process group, so
a kill of the group misses it, and its parent is gone, so it is re-parented: to init, or to the
nearest ancestor that made itself a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`, Linux 3.4+).
Such an ancestor finds those processes as its children it did not fork (`adopted`) and can kill them.

The parse fork server (spinner/forkserver.py, `--reap-orphans`) is the subreaper of every parse it
forks; a parse in a fresh process is its own (`supervise`, services/scheduler/parse_worker.py).
Elsewhere than Linux there is no subreaper: `become_subreaper` raises OSError.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys
import time
from collections.abc import Callable

PR_SET_CHILD_SUBREAPER = 36
REAP_DEADLINE = 5.0  # seconds `kill_adopted` keeps killing what is re-parented to it


def become_subreaper() -> None:
    """Makes this process the subreaper of its descendants (not inherited by what it forks)."""
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "no child subreaper outside Linux")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def adopted(known: set[int]) -> list[int]:
    """This process's children it did not fork (not in `known`): orphans of its children's descendants.
    A zombie counts until it is reaped."""
    me, found = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in known:
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(b")") + 2 :].split()[1]) == me:  # the field after the state is the ppid
            found.append(int(entry.name))
    return found


def kill_orphans(known: set[int]) -> None:
    """SIGKILLs every process it adopted, and the process group each leads (what it started in its own
    session). A process group's id is never reused while the group has a member: no stranger is hit."""
    for pid in adopted(known):
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass


def kill_adopted(deadline: float = REAP_DEADLINE) -> list[int]:
    """Once every child this process forked has ended and been reaped: kills and reaps what it adopted,
    again and again, since the children of a killed orphan are adopted in their turn, until none is left
    or `deadline` seconds have passed. Returns what it still had then (empty: all gone)."""
    end = time.monotonic() + deadline
    while True:
        kill_orphans(set())
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        left = adopted(set())
        if not left or time.monotonic() >= end:
            return left
        time.sleep(0.01)  # killed but not dead yet (SIGKILL is delivered when it next runs)


def supervise(job: Callable[[], int]) -> int:
    """Runs `job` in a forked child and, once it has ended, kills everything it left running; returns the
    child's exit code (-N: killed by signal N, as `os.waitstatus_to_exitcode`). Call it a subreaper.

    SIGTERM to this process stops the job: its child is SIGKILLed, and what it left is killed as above.
    (SIGKILL cannot be caught: a supervisor killed so leaves the job's daemons to init.)"""
    child = 0
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child:
            os.kill(child, signal.SIGKILL)

    previous = signal.signal(signal.SIGTERM, stop) or signal.SIG_DFL
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, previous)
        code = 1
        try:
            code = int(job())
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
    child = pid
    if stopping:  # SIGTERM came while it forked
        os.kill(child, signal.SIGKILL)
    _, status = os.waitpid(child, 0)
    child = 0  # reaped: its pid may be another process's from now on
    kill_adopted()
    signal.signal(signal.SIGTERM, previous)
    return os.waitstatus_to_exitcode(status)


def exit_as(code: int) -> int:
    """The exit code to return to end as a child that ended with `code` did: for a signal (-N), this
    process dies of that signal (without a core dump), so its parent sees what it would have seen."""
    if code >= 0:
        return code
    sig = -code
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        signal.signal(sig, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL and SIGSTOP have no handler to reset
        pass
    os.kill(os.getpid(), sig)
    return 128 + sig  # a signal that does not end a process (SIGCHLD, SIGCONT...)
