"""Standalone mode: the file the executor wrote the runner's output to."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path

from services.logs.sources.base import LogChunk, SourceMissing, State, split_lines, window
from spinner.logpaths import complete_marker, local_log_path
from spinner.tasklog import LogId


class LocalSource:
    name = "local"

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._ended: OrderedDict[Path, tuple[int, list[str]]] = OrderedDict()  # ended logs, already split

    async def read(self, key: LogId, offset: int, limit: int, state: State | None = None) -> LogChunk:
        path = local_log_path(self._log_dir, key.dag_id, key.run_id, key.task_id, key.try_number, key.map_index)
        return await asyncio.to_thread(self._read, path, offset, limit, state)

    def _read(self, path: Path, offset: int, limit: int, state: State | None) -> LogChunk:
        # The marker is checked before reading: if it exists, the file is whole by the time we read.
        ended = complete_marker(path).exists()
        cached = self._ended.get(path) if ended else None
        try:
            size = path.stat().st_size
            if cached is not None and cached[0] == size:
                texts = cached[1]
            else:
                texts = split_lines(path.read_bytes().decode("utf-8", "replace"), ended=ended)
                if ended:
                    self._ended[path] = (size, texts)
                    while len(self._ended) > 8:
                        self._ended.popitem(last=False)
        except FileNotFoundError:
            raise SourceMissing("local: no log file (has the try started?)") from None
        return window(texts, offset, limit, source=self.name, ended=ended, state=state)
