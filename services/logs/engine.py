"""Finding and reading a task try's log, wherever it is: the caller never names a store.

Standalone (`source` local): the file the executor wrote. Otherwise, in order:

1. S3: the archive exists only once the try has ended (its completion marker is written last),
   so finding it means the log is whole.
2. The pod, through the Kubernetes API: the live log of a running try (and the whole log of
   an ended pod not yet deleted).
3. Elasticsearch: when neither of those could be read (the pod gone, the API or S3 down, the
   archive damaged).

Every answer says which source served it, and, when the preferred one (the pod while running,
S3 once ended) could not, why. An instance of a mapped task has a log of its own in every store,
found by its map_index (docs/adr/0007-dynamic-task-mapping.md). `follow` streams the log as it
grows: it reads by offset from whichever source answers, streaming from the pod while it runs, so
switching from the pod to the archive (or to Elasticsearch and back) neither repeats nor skips a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from services.logs.sources.base import (
    DEFAULT_MAX_LINES,
    MAX_PAGE_BYTES,
    Line,
    LogChunk,
    LogSource,
    SourceError,
    SourceMissing,
    SourceUnavailable,
    State,
)
from services.logs.sources.pod import PodSource
from spinner.mapping import NO_MAP_INDEX
from spinner.tasklog import LogId, SectionTracker

NOT_FOUND_GRACE = 30.0  # seconds a follower waits for a log that does not exist yet (a try still queued)


class LogError(Exception):
    """Base of the logs service's domain errors."""


class LogNotFound(LogError):
    pass


class LogUnavailable(LogError):
    pass


class InvalidLogRequest(LogError):
    pass


class LogReader:
    def __init__(
        self,
        sources: Sequence[LogSource],
        *,
        follow_interval: float = 0.5,
        not_found_grace: float = NOT_FOUND_GRACE,
    ) -> None:
        """`sources` in order of preference (see the module's docstring)."""
        self._sources = list(sources)
        self._interval = follow_interval
        self._grace = not_found_grace

    async def aclose(self) -> None:
        for source in self._sources:
            closer: Any = getattr(source, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    @staticmethod
    def check(
        dag_id: str, run_id: str, task_id: str, try_number: int, from_offset: int, map_index: int = NO_MAP_INDEX
    ) -> LogId:
        if not (dag_id and run_id and task_id):
            raise InvalidLogRequest("dag_id, run_id and task_id are required")
        if try_number < 1:
            raise InvalidLogRequest("try_number must be 1 or more")
        if from_offset < 0:
            raise InvalidLogRequest("from_offset must be 0 or more")
        if map_index < NO_MAP_INDEX:
            raise InvalidLogRequest("map_index must be 0 or more (an instance of a mapped task), or absent")
        return LogId(dag_id=dag_id, task_id=task_id, run_id=run_id, try_number=try_number, map_index=map_index)

    async def read(self, key: LogId, from_offset: int, max_lines: int = 0, state: State | None = None) -> LogChunk:
        limit = min(max_lines, DEFAULT_MAX_LINES) if max_lines > 0 else DEFAULT_MAX_LINES
        reasons: list[str] = []
        unavailable = False
        for source in self._sources:
            try:
                chunk = await source.read(key, from_offset, limit, state)
            except SourceMissing as e:
                reasons.append(str(e))
                continue
            except SourceUnavailable as e:
                reasons.append(str(e))
                unavailable = True
                continue
            return chunk.because(self._fallback_reason(source.name, chunk, reasons))
        what = key.describe()
        if unavailable:
            raise LogUnavailable(f"the log of {what} cannot be read now: " + "; ".join(reasons))
        raise LogNotFound(f"no log for {what} (has the try started?): " + "; ".join(reasons))

    @staticmethod
    def _fallback_reason(served_by: str, chunk: LogChunk, reasons: list[str]) -> str:
        """Why a source other than the preferred one answered; empty when it was the preferred one."""
        if served_by in ("local", "s3"):
            return ""
        if served_by == "pod":  # preferred while the try runs; once its pod has ended, the archive is
            return "; ".join(reasons) if chunk.complete else ""
        return "; ".join(r for r in reasons if not r.startswith("s3: no archived log") or chunk.complete)

    async def follow(self, key: LogId, from_offset: int) -> AsyncIterator[LogChunk]:
        """Chunks from `from_offset` on until the log is whole; the first one comes at once (maybe empty)."""
        offset = from_offset
        first = True
        missing_since: float | None = None
        last_source = ""
        state: State | None = None  # sections and readiness after the lines before `offset`
        while True:
            try:
                chunk = await self.read(key, offset, state=state)
            except LogNotFound:
                now = time.monotonic()
                missing_since = missing_since or now
                if now - missing_since > self._grace:
                    raise
                if first:
                    yield LogChunk(lines=[], next_offset=offset, source="", complete=False)
                    first = False
                await asyncio.sleep(self._interval)
                continue
            except LogUnavailable as e:
                if first:
                    raise
                # Every store failed at once: say so in the stream and keep trying.
                yield LogChunk(lines=[], next_offset=offset, source="", complete=False, fallback_reason=str(e))
                await asyncio.sleep(self._interval * 4)
                continue
            missing_since = None
            if chunk.lines or chunk.complete or first or chunk.source != last_source:
                yield chunk
            first = False
            last_source = chunk.source
            if chunk.lines:
                state = (chunk.lines[-1].section, chunk.readiness or (state[1] if state else ""))
            if chunk.complete:
                return
            offset = chunk.next_offset
            pod = self._pod()
            if chunk.source == "pod" and pod is not None:
                streamed = False
                async for out in self._stream(pod, key, offset, chunk):
                    yield out
                    offset, streamed = out.next_offset, True
                    state = (out.lines[-1].section, out.readiness)
                if streamed:
                    continue  # the container ended or the stream broke: read again, from whichever store
            elif len(chunk.lines) >= DEFAULT_MAX_LINES:
                continue  # more is there already
            await asyncio.sleep(self._interval)

    def _pod(self) -> PodSource | None:
        return next((s for s in self._sources if isinstance(s, PodSource)), None)

    @staticmethod
    async def _stream(pod: PodSource, key: LogId, offset: int, last: LogChunk) -> AsyncIterator[LogChunk]:
        """Lines streamed from the pod as they are written, until its container ends or the stream breaks."""
        tracker = SectionTracker()  # the stream starts at the log's first line: it sees every marker
        try:
            async for whole in pod.stream(key, offset, tracker):
                for batch in _pages(whole):
                    yield LogChunk(
                        lines=batch,
                        next_offset=batch[-1].offset + 1,
                        source=pod.name,
                        complete=False,
                        readiness=tracker.readiness,
                    )
        except SourceError:
            pass  # the next read finds the source that answers now


def _pages(lines: list[Line]) -> list[list[Line]]:
    """`lines` cut into answers of at most DEFAULT_MAX_LINES lines and about MAX_PAGE_BYTES of text."""
    pages: list[list[Line]] = [[]]
    size = 0
    for line in lines:
        if pages[-1] and (len(pages[-1]) >= DEFAULT_MAX_LINES or size + len(line.text) > MAX_PAGE_BYTES):
            pages.append([])
            size = 0
        pages[-1].append(line)
        size += len(line.text)
    return pages


__all__ = ["InvalidLogRequest", "LogChunk", "LogError", "LogNotFound", "LogReader", "LogUnavailable"]
