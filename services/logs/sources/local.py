"""Standalone mode: the file the executor wrote the runner's output to."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.logs.sources.base import LogChunk, SourceMissing, split_lines, window
from spinner.logpaths import complete_marker, local_log_path
from spinner.tasklog import LogId


class LocalSource:
    name = "local"

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir

    async def read(self, key: LogId, offset: int, limit: int) -> LogChunk:
        path = local_log_path(self._log_dir, key.dag_id, key.run_id, key.task_id, key.try_number)
        return await asyncio.to_thread(self._read, path, offset, limit)

    def _read(self, path: Path, offset: int, limit: int) -> LogChunk:
        # The marker is checked before reading: if it exists, the file is whole by the time we read.
        ended = complete_marker(path).exists()
        try:
            text = path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            raise SourceMissing("local: no log file (has the try started?)") from None
        return window(split_lines(text, ended=ended), offset, limit, source=self.name, ended=ended)
