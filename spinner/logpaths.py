"""Where a task try's log lives as a local file (standalone mode), shared by executor and logs service."""

from __future__ import annotations

import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+:=@-]")


def _safe(part: str) -> str:
    cleaned = _UNSAFE.sub("_", part)
    return cleaned if cleaned not in ("", ".", "..") else f"_{cleaned}_"


def local_log_path(log_dir: Path, dag_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    """`<log_dir>/dag_id=<d>/run_id=<r>/task_id=<t>/attempt=<n>.log`, each part made path-safe."""
    return (
        log_dir
        / f"dag_id={_safe(dag_id)}"
        / f"run_id={_safe(run_id)}"
        / f"task_id={_safe(task_id)}"
        / f"attempt={int(try_number)}.log"
    )


def complete_marker(log_path: Path) -> Path:
    """Written by the executor once the try's process has exited: the log will not grow any more."""
    return log_path.with_name(log_path.name + ".complete")
