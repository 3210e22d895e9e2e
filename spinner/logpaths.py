"""Where a task try's log lives as a local file (standalone mode), shared by executor and logs service."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote

from spinner.mapping import NO_MAP_INDEX

# Longest encoded id kept as it is; longer ones are cut and end with a hash of the whole id, so
# a path part stays under the 255-byte file-name limit (a 250-character run id of accents is 1,500).
MAX_PART = 200
# The local backend tells a runner where its log file is, so the runner marks it complete itself
# (spinner/runner/completion.py): the executor that launched it may not be there to see it end.
LOG_PATH_ENV = "SPINNER_LOG_PATH"
_SPECIAL = {"": "%", ".": "%2E", "..": "%2E%2E"}


def _safe(part: str) -> str:
    """The id as one file name: what is not safe is percent-encoded, '%' included, so two different
    ids never share a file ('a b' is `a%20b`, 'a_b' stays `a_b`)."""
    encoded = _SPECIAL.get(part) or quote(part, safe="+:=@")
    if len(encoded) > MAX_PART:
        encoded = f"{encoded[: MAX_PART - 17]}~{hashlib.sha256(part.encode()).hexdigest()[:16]}"
    return encoded


def local_log_path(
    log_dir: Path, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = NO_MAP_INDEX
) -> Path:
    """`<log_dir>/dag_id=<d>/run_id=<r>/task_id=<t>/attempt=<n>.log`, each part made path-safe; an
    instance of a mapped task has a folder of its own, `.../task_id=<t>/map_index=<i>/attempt=<n>.log`
    (docs/adr/0007-dynamic-task-mapping.md), so an unmapped task's path is what it always was."""
    task_dir = log_dir / f"dag_id={_safe(dag_id)}" / f"run_id={_safe(run_id)}" / f"task_id={_safe(task_id)}"
    if map_index >= 0:
        task_dir = task_dir / f"map_index={int(map_index)}"
    return task_dir / f"attempt={int(try_number)}.log"


def complete_marker(log_path: Path) -> Path:
    """The log will not grow any more: an empty file, touched by the runner as its last act and by the
    executor once it sees the process exit, whichever comes first. A sensor's next poke goes on in the
    same log: its launch removes the marker (docs/adr/0006-sensor-reschedule.md)."""
    return log_path.with_name(log_path.name + ".complete")
