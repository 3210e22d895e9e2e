"""Finding and reading a task try's log. Standalone mode: the local file the executor wrote.

Kubernetes (live from the pod), Elasticsearch and S3 sources arrive with issue 6 behind
the same `LogReader.read` answer, which always says which source served it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from pathlib import Path

from spinner.logpaths import complete_marker, local_log_path

DEFAULT_MAX_LINES = 5000


class LogError(Exception):
    """Base of the logs service's domain errors."""


class LogNotFound(LogError):
    pass


class InvalidLogRequest(LogError):
    pass


@dataclass(frozen=True)
class LogChunk:
    lines: list[str]
    next_offset: int
    source: str
    complete: bool


class LogReader:
    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir

    async def read(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, from_offset: int, max_lines: int
    ) -> LogChunk:
        if not (dag_id and run_id and task_id):
            raise InvalidLogRequest("dag_id, run_id and task_id are required")
        if try_number < 1:
            raise InvalidLogRequest("try_number must be 1 or more")
        if from_offset < 0:
            raise InvalidLogRequest("from_offset must be 0 or more")
        limit = max_lines if max_lines > 0 else DEFAULT_MAX_LINES
        path = local_log_path(self._log_dir, dag_id, run_id, task_id, try_number)
        return await asyncio.to_thread(self._read_file, path, from_offset, limit, (dag_id, run_id, task_id, try_number))

    @staticmethod
    def _read_file(path: Path, offset: int, limit: int, key: tuple[str, str, str, int]) -> LogChunk:
        # The marker is checked before reading: if it exists, the file is whole by the time we read.
        ended = complete_marker(path).exists()
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                raw = list(itertools.islice(f, offset, offset + limit + 1))
        except FileNotFoundError:
            dag_id, run_id, task_id, try_number = key
            raise LogNotFound(
                f"no log for {dag_id}.{task_id} run {run_id} try {try_number} (has the try started?)"
            ) from None
        more = len(raw) > limit
        raw = raw[:limit]
        if raw and not ended and not raw[-1].endswith("\n"):
            # A line still being written has no newline yet: leave it for the next read. (Judged on the
            # text read, not the file's last byte now, which may already belong to a later write.)
            raw.pop()
        lines = [line.removesuffix("\n") for line in raw]
        return LogChunk(lines=lines, next_offset=offset + len(lines), source="local", complete=ended and not more)
