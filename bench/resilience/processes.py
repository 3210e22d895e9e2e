"""Processes the suite starts: each with its output in a file, stopped by its own pid, and a check that
nothing of a scenario is left running afterwards (every process of it names the scenario's folder in its
command line or its environment)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def start(argv: Sequence[str], *, env: dict[str, str], log: Path, new_session: bool = True) -> subprocess.Popen[bytes]:
    """`argv` with stdout and stderr appended to `log` (a file, never a pipe nobody reads)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(argv), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM (after SIGCONT, in case it was stopped), then SIGKILL after `timeout`; reaps it."""
    if proc.poll() is None:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            signal_pid(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_pid(proc.pid, signal.SIGKILL)
            proc.wait(10)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """kill -9, and reaps it."""
    signal_pid(proc.pid, signal.SIGKILL)
    proc.wait(10)


def signal_pid(pid: int, sig: int) -> bool:
    """False when there is no such process (any more)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone, or not ours to read
        return b""


def children(pid: int) -> list[int]:
    """The direct children of `pid` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat").rsplit(b")", 1)
            if len(stat) == 2 and stat[1].split()[1:2] == [str(pid).encode()]:
                found.append(int(entry))
    return found


def cmdline(pid: int) -> list[str]:
    return [part.decode(errors="replace") for part in _read(f"/proc/{pid}/cmdline").split(b"\0") if part]


def environ(pid: int) -> dict[str, str]:
    env = {}
    for item in _read(f"/proc/{pid}/environ").split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def belonging_to(folder: Path) -> list[int]:
    """Every live process whose command line or environment names `folder`: what a scenario started,
    its services' task runners and their commands included."""
    mark = str(folder).encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            if mark in _read(f"/proc/{entry}/cmdline") or mark in _read(f"/proc/{entry}/environ"):
                if b"State:\tZ" not in _read(f"/proc/{entry}/status"):
                    found.append(int(entry))
    return found


def reap_leftovers(folder: Path, timeout: float = 10.0) -> list[str]:
    """Kills what is still running of a scenario (SIGTERM, then SIGKILL); returns what it found, as
    "pid command" lines, so a leak is reported, not hidden."""
    found = [f"{pid} {' '.join(cmdline(pid))[:200]}" for pid in belonging_to(folder)]
    for pid in belonging_to(folder):
        signal_pid(pid, signal.SIGCONT)
        signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while belonging_to(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in belonging_to(folder):
        signal_pid(pid, signal.SIGKILL)
    return found
