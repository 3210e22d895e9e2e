"""Processes that are not our children: is this pid still the process we mean, and when is it gone.

A restarted executor adopts the runners its predecessor started (services/executor/backends/local.py).
They are not its children, so it cannot wait for them: it watches them through a pidfd (Linux
5.3+), or by looking at /proc every half second where there is none. A pid is reused once its
process is gone, so a pid from the database is trusted only when its process started no later
than the try's Start was recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from pathlib import Path

POLL_INTERVAL = 0.5
_CLOCK_SLACK = dt.timedelta(seconds=2)  # /proc's start time is in clock ticks, and the two clocks are read apart


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    """True while the process exists and has not exited (a zombie has exited)."""
    fields = _stat_fields(pid)
    if fields is not None:
        return fields[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stopped(pid: int) -> bool:
    """True while the process is stopped (SIGSTOP, a job-control stop): alive, but not running."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] == "T"


def process_tag() -> str:
    """Which boot of which machine, and which pid namespace, this process's pid belongs to: a pid
    from a process with the same tag names a process this one can see (empty when unknown)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
        namespace = os.readlink("/proc/self/ns/pid")  # pid:[4026531836]
    except OSError:
        return ""
    return f"{boot}.{namespace.removeprefix('pid:[').removesuffix(']')}"


def started_at(pid: int) -> dt.datetime | None:
    """When the process started, from /proc (None when it is gone or there is no /proc)."""
    fields = _stat_fields(pid)
    boot = _boot_time()
    if fields is None or boot is None:
        return None
    ticks = int(fields[19])  # field 22 of stat: starttime, in clock ticks since boot
    return dt.datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), dt.UTC)


def is_same_process(pid: int, started_by: dt.datetime | None) -> bool:
    """True when `pid` is alive and, if `started_by` is known, its process started no later than that
    (a process started afterwards reuses the pid of the one we mean, which is gone)."""
    if pid <= 0 or not is_alive(pid):
        return False
    if started_by is None:
        return True
    began = started_at(pid)
    return began is None or began <= started_by + _CLOCK_SLACK


async def wait_gone(pid: int) -> None:
    """Returns once the process has exited."""
    fd: int | None = None
    with contextlib.suppress(AttributeError, OSError):
        fd = os.pidfd_open(pid)
    if fd is None:
        while is_alive(pid):  # noqa: ASYNC110 - nothing to wait on but /proc
            await asyncio.sleep(POLL_INTERVAL)
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    try:
        loop.add_reader(fd, lambda: None if gone.done() else gone.set_result(None))
        try:
            if is_alive(pid):  # it may have ended before the reader was added
                await gone
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)
