"""Ships a task try's log lines to Elasticsearch in batches, without ever slowing or failing the task.

The runner writes every line to stdout (the pod log) and also hands it to a `LogShipper`:
`put()` only appends to a bounded in-memory buffer and returns at once, from the shipper's
event loop or from any other thread. A background task sends the buffer in `_bulk` batches,
one document per line:

    dag_id, task_id, run_id, try_number   the try's log id
    map_index                             only for an instance of a mapped task (unmapped: no field, as before)
    offset                                the line's number in the try's log (orders lines)
    timestamp, @timestamp                 when it was written (@timestamp lets the pattern name a data stream)
    section                               "readiness" or "task"; "end" marks one past the last line (the log is whole)
    level, message

into the index `timestamp.strftime(index_pattern)` (e.g. `spinner-logs-%Y.%m.%d`, one per day).
Documents have ids derived from (log id, offset) and are written with `create`, so a batch
retried after a timeout that had in fact been applied is harmless (409 counts as shipped).

When Elasticsearch is slow, down or rejecting (429/5xx), lines stay buffered and the batch is
retried with backoff; only when the buffer is full are the oldest lines dropped, counted, and
warned about once per episode (the newest lines matter most to someone following a running
task, and the whole log reaches S3 anyway). A line Elasticsearch refuses for good (a 4xx other
than 409/429) is dropped and counted too. The bound is on buffered lines, plus the one batch in
flight. Closing drains what it can within `drain_timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from spinner.clock import utcnow
from spinner.tasklog import LogId

__all__ = ["LogId", "LogLine", "LogShipper", "ShipperStats", "install_index_template"]

log = logging.getLogger(__name__)

Section = Literal["readiness", "task", "end"]  # "end": no text, one past the last line: the log is whole


@dataclass(frozen=True)
class LogLine:
    offset: int
    timestamp: datetime
    section: Section
    level: str
    message: str


@dataclass
class ShipperStats:
    shipped: int = 0  # lines Elasticsearch holds (including ones it already had)
    dropped: int = 0  # lines pushed out of a full buffer, or left when closing timed out
    rejected: int = 0  # lines Elasticsearch refused for good
    failed_requests: int = 0  # bulk requests that failed as a whole (connection, timeout, 429/5xx)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class LogShipper:
    """A bounded, batching shipper of one try's log lines; `async with` starts it and drains it."""

    def __init__(
        self,
        client: AsyncElasticsearch,
        log_id: LogId,
        *,
        index_pattern: str,
        max_buffered: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        request_timeout: float = 5.0,
        drain_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.2, 10.0),
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_buffered < 1 or batch_size < 1:
            raise ValueError("max_buffered and batch_size must be at least 1")
        self._client = client.options(request_timeout=request_timeout, max_retries=0)
        self._log_id = log_id
        id_parts = [log_id.dag_id, log_id.run_id, log_id.task_id, str(log_id.try_number)]
        if log_id.map_index >= 0:  # a mapped task's instances have documents of their own; unmapped ids unchanged
            id_parts.append(f"m{log_id.map_index}")
        self._id_prefix = "\x1f".join(id_parts)
        self._pattern = index_pattern
        self._max = max_buffered
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._drain_timeout = drain_timeout
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._buffer: deque[LogLine] = deque()
        self._oldest_at = 0.0  # monotonic time the oldest buffered line arrived
        self._lock = threading.Lock()  # put() may come from the runner's other threads
        self._next_offset = 0
        self._dropping = False  # inside an episode of dropped lines (warned once)
        self._failing = False  # inside an outage (warned once)
        self._warned: set[str] = set()
        self._closing = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self.stats = ShipperStats()

    # --- the task's side: never waits ---------------------------------------------------------

    def put(
        self,
        message: str,
        *,
        section: Section = "task",
        level: str = "INFO",
        offset: int | None = None,
        timestamp: datetime | None = None,
    ) -> int:
        """Buffer one line (without its newline) and return its offset; never blocks, never raises."""
        with self._lock:
            if offset is None:
                offset = self._next_offset
            self._next_offset = max(self._next_offset, offset + 1)
            line = LogLine(offset, timestamp or self._clock(), section, level, message)
            if not self._buffer:
                self._oldest_at = time.monotonic()
            if len(self._buffer) >= self._max:
                self._drop_oldest()
            self._buffer.append(line)
            size = len(self._buffer)
        if size == 1 or size == self._batch_size:
            self._notify()
        return offset

    def _drop_oldest(self) -> None:
        """Under the lock: make room by dropping the oldest line, warning once per episode."""
        self._buffer.popleft()
        self.stats.dropped += 1
        if not self._dropping:
            self._dropping = True
            log.warning(
                "log shipping: buffer full (%d lines), dropping the oldest lines while Elasticsearch is slow or down",
                self._max,
            )

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop stopped between the check and the call
                loop.call_soon_threadsafe(self._wake.set)

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> LogShipper:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task = asyncio.create_task(self._run(), name="logship")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Send what is buffered within `drain_timeout`, then stop; idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self._drain_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except asyncio.CancelledError:
            task.cancel()  # closing was cancelled: stop shipping too, and let the cancellation go on
            raise
        except Exception:  # a bug in shipping must not fail the task whose log it ships: report it loudly
            log.exception("log shipping failed")
        with self._lock:
            left = len(self._buffer)
            self._buffer.clear()
        if left:
            self.stats.dropped += left
            log.warning("log shipping: %d lines not shipped when the task ended (Elasticsearch unavailable)", left)
        if self.stats.dropped or self.stats.rejected:
            log.warning(
                "log shipping: %d lines shipped, %d dropped, %d refused by Elasticsearch",
                self.stats.shipped,
                self.stats.dropped,
                self.stats.rejected,
            )

    # --- the shipping loop --------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            await self._wait_for_batch()
            with self._lock:
                batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
                self._oldest_at = time.monotonic()
            if not batch:
                if self._closing:
                    return
                continue
            try:
                retry = await self._send(batch)
            except asyncio.CancelledError:
                self._requeue(batch)  # cancelled while draining: aclose counts what is left
                raise
            except Exception:  # not Elasticsearch's answer (those are handled): keep the lines, retry later
                self._warn_once("unexpected", "log shipping: unexpected error, retrying", exc_info=True)
                retry = batch
            self._requeue(retry)
            if not retry:
                delay = self._backoff[0]
                continue
            await self._sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _wait_for_batch(self) -> None:
        while not self._closing:
            self._wake.clear()
            size = len(self._buffer)
            if size >= self._batch_size:
                return
            timeout = None
            if size:
                timeout = self._oldest_at + self._flush_interval - time.monotonic()
                if timeout <= 0:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _document(self, line: LogLine) -> dict[str, Any]:
        stamp = line.timestamp.isoformat().replace("+00:00", "Z")
        instance = {"map_index": self._log_id.map_index} if self._log_id.map_index >= 0 else {}
        return {
            "dag_id": self._log_id.dag_id,
            "task_id": self._log_id.task_id,
            "run_id": self._log_id.run_id,
            "try_number": self._log_id.try_number,
            **instance,
            "offset": line.offset,
            "timestamp": stamp,
            "@timestamp": stamp,
            "section": line.section,
            "level": line.level,
            "message": line.message,
        }

    def _doc_id(self, line: LogLine) -> str:
        return hashlib.sha256(f"{self._id_prefix}\x1f{line.offset}".encode()).hexdigest()[:40]

    async def _send(self, batch: list[LogLine]) -> list[LogLine]:
        """Send one batch; return the lines to send again (all of them when Elasticsearch did not answer)."""
        operations: list[dict[str, Any]] = []
        for line in batch:
            index = line.timestamp.strftime(self._pattern)
            operations += [{"create": {"_index": index, "_id": self._doc_id(line)}}, self._document(line)]
        try:
            reply = await self._client.bulk(operations=operations)
        except (TransportError, ApiError) as e:
            status = e.status_code if isinstance(e, ApiError) else None
            if status is not None and not _retryable(status):
                self.stats.rejected += len(batch)
                self._warn_once(
                    "refused", "log shipping: Elasticsearch refuses batches (%s); their lines are dropped", e
                )
                return []
            self.stats.failed_requests += 1
            if not self._failing:
                self._failing = True
                log.warning("log shipping: Elasticsearch unavailable (%s); buffering up to %d lines", e, self._max)
            return batch
        retry: list[LogLine] = []
        for line, item in zip(batch, reply["items"], strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 500))
            if status < 300 or status == 409:  # 409: an earlier attempt already wrote it
                self.stats.shipped += 1
            elif _retryable(status):
                retry.append(line)
            else:
                self.stats.rejected += 1
                self._warn_once("item", "log shipping: Elasticsearch refused a line: %s", result.get("error"))
        if self._failing and not retry:
            self._failing = False
            log.info("log shipping: Elasticsearch is back")
        return retry

    def _warn_once(self, kind: str, message: str, *args: object, exc_info: bool = False) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(message, *args, exc_info=exc_info)

    def _requeue(self, lines: list[LogLine]) -> None:
        """Put lines to retry back in front of the buffer, dropping the oldest past the bound."""
        with self._lock:
            self._buffer.extendleft(reversed(lines))
            while len(self._buffer) > self._max:
                self._drop_oldest()
            if self._dropping and len(self._buffer) < self._max:
                self._dropping = False
                log.warning("log shipping: %d lines dropped so far; shipping again", self.stats.dropped)


LOG_MAPPINGS: dict[str, Any] = {
    "properties": {
        "dag_id": {"type": "keyword"},
        "task_id": {"type": "keyword"},
        "run_id": {"type": "keyword"},
        "try_number": {"type": "integer"},
        "map_index": {"type": "integer"},
        "offset": {"type": "long"},
        "timestamp": {"type": "date"},
        "@timestamp": {"type": "date"},
        "section": {"type": "keyword"},
        "level": {"type": "keyword"},
        "message": {"type": "text"},
    }
}


async def install_index_template(client: AsyncElasticsearch, index_pattern: str, *, name: str = "spinner-logs") -> None:
    """Map the log id fields as keywords in every index the pattern makes (a deploy step, idempotent).

    Without it, dynamic mapping makes them `text` (search them as `dag_id.keyword`). Priority 200
    overrides Elasticsearch's built-in `logs-*-*` data stream template for a pattern under it.
    """
    wildcard = re.sub(r"%.", "*", index_pattern)
    await client.indices.put_index_template(
        name=name, index_patterns=[wildcard], template={"mappings": LOG_MAPPINGS}, priority=200
    )
