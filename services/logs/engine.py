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

A log is complete when its writer says so (the local file's marker, the archive's, Elasticsearch's end
document, an ended pod). A writer killed outright (SIGKILL, a lost node) never says so: a follow then
ends once the try has ended, as the database has it (`TryStates`), and nothing new has come for
`ended_quiet` seconds; its last chunk is complete and says why (`ENDED_UNMARKED`). The try's state
is read only while the log is quiet, and at most every `state_interval` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.logs import queries
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
from spinner.db.callbacks import ENDED as CALLBACK_ENDED
from spinner.db.callbacks import is_callback_task_id
from spinner.mapping import NO_MAP_INDEX
from spinner.tasklog import LogId, SectionTracker

log = logging.getLogger(__name__)

NOT_FOUND_GRACE = 30.0  # seconds a follower waits for a log that does not exist yet (a try still queued)
ENDED_QUIET = 5.0  # seconds an ended try's unmarked log must stay quiet before a follow of it ends
STATE_INTERVAL = 2.0  # the fewest seconds between two reads of a followed try's state
ENDED_UNMARKED = (
    "the try ended without its log being marked complete (was its process killed?): the log ends at the last "
    "line it wrote"
)
# A task instance still at the followed try in one of these has not ended it (a sensor between pokes goes on).
_GOES_ON = ("queued", "running", "up_for_reschedule")


class LogError(Exception):
    """Base of the logs service's domain errors."""


class LogNotFound(LogError):
    pass


class LogUnavailable(LogError):
    pass


class InvalidLogRequest(LogError):
    pass


def try_has_ended(found: queries.TaskProgress | None, try_number: int) -> bool:
    """Whether try `try_number` of a task instance is over, from the instance's row (None: no row)."""
    if found is None:
        return True  # no such task instance (any more): nothing will write this log
    if found.try_number != try_number:
        return found.try_number > try_number  # a later try began; an earlier number means this one is yet to come
    if found.state in _GOES_ON:
        return False
    # Scheduled again at the same try: a sensor's next poke (reschedule_at set), else after a retry or a clear.
    return not (found.state == "scheduled" and found.reschedule_at is not None)


class TryStates:
    """Whether the try that writes a log has ended, read from the database (a DAG callback's log: its row)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], float] = time.monotonic,
        warn_every: float = 60.0,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._warn_every = warn_every
        self._warned_at = -math.inf

    async def ended(self, key: LogId) -> bool | None:
        """None when the database cannot say now (unreachable, not migrated): the follow goes on as before."""
        try:
            async with self._sessions() as session:
                if is_callback_task_id(key.task_id):
                    state = await queries.callback_state(session, key)
                    return state is None or state in CALLBACK_ENDED
                found = await queries.task_progress(session, key)
        except (SQLAlchemyError, OSError, TimeoutError) as e:
            now = self._clock()
            if now - self._warned_at >= self._warn_every:
                self._warned_at = now
                log.warning("cannot read the state of %s (follows wait for its log's marker): %s", key.describe(), e)
            return None
        return try_has_ended(found, key.try_number)


class _EndWatch:
    """One follow's view of whether its log, never marked complete, has ended anyway."""

    def __init__(
        self, key: LogId, tries: TryStates | None, quiet: float, every: float, clock: Callable[[], float]
    ) -> None:
        self._key = key
        self._tries = tries
        self._quiet = quiet
        self._every = every
        self._clock = clock
        self._grew_at = clock()
        self._checked_at = -math.inf

    def grew(self) -> None:
        self._grew_at = self._clock()

    async def ended(self) -> bool:
        """True once the try has ended and nothing new came for `quiet` s; reads the state at most every `every` s."""
        now = self._clock()
        if self._tries is None or now - self._grew_at < self._quiet or now - self._checked_at < self._every:
            return False
        self._checked_at = now
        return await self._tries.ended(self._key) is True


class LogReader:
    def __init__(
        self,
        sources: Sequence[LogSource],
        *,
        follow_interval: float = 0.5,
        not_found_grace: float = NOT_FOUND_GRACE,
        tries: TryStates | None = None,
        ended_quiet: float = ENDED_QUIET,
        state_interval: float = STATE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`sources` in order of preference (see the module's docstring). Without `tries`, a follow
        ends only when its log is marked complete."""
        self._sources = list(sources)
        self._interval = follow_interval
        self._grace = not_found_grace
        self._tries = tries
        self._ended_quiet = ended_quiet
        self._state_interval = state_interval
        self._clock = clock

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
        watch = _EndWatch(key, self._tries, self._ended_quiet, self._state_interval, self._clock)
        while True:
            try:
                chunk = await self.read(key, offset, state=state)
            except LogNotFound:
                now = self._clock()
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
                watch.grew()
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
                    watch.grew()
                if streamed:
                    continue  # the container ended or the stream broke: read again, from whichever store
            elif len(chunk.lines) >= DEFAULT_MAX_LINES:
                continue  # more is there already
            if await watch.ended():
                reason = "; ".join(r for r in (ENDED_UNMARKED, chunk.fallback_reason) if r)
                yield LogChunk(
                    lines=[], next_offset=offset, source=chunk.source, complete=True,
                    readiness=chunk.readiness or (state[1] if state else ""), fallback_reason=reason,
                )  # fmt: skip
                return
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


__all__ = [
    "ENDED_UNMARKED", "InvalidLogRequest", "LogChunk", "LogError", "LogNotFound", "LogReader", "LogUnavailable",
    "TryStates", "try_has_ended",
]  # fmt: skip
