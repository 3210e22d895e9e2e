"""What a benchmark ran on, so figures from different machines can be compared.

`cpu_ref_s` is the time one core takes for a fixed pure-Python loop (best of three): the same
code on a machine with twice that figure should expect roughly half the throughput.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_reference() -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i * i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User plus system CPU time a running process has used (Linux /proc); with `children`, what its
    children that it has waited for used (cutime + cstime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def pid_of(name: str) -> int | None:
    """The first process whose command name is `name` (e.g. mariadbd), if any is visible."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        return int(entry)
            except OSError:
                continue
    return None


def describe() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cpu_ref_s": cpu_reference(),
        "load_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
