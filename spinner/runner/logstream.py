"""The runner's log: every line the try writes goes to stdout (the pod log or the local file) and,
when configured, to Elasticsearch while it runs and to S3 when it ends.

`LogStream.start()` points file descriptors 1 and 2 at a pipe, so the task's own output, its
logging and the output of any subprocess it starts are all caught. A pump thread copies each
line to the original stdout, keeps it for the archive (a temporary file) and hands it to a
`LogShipper` running in a thread of its own: shipping never blocks the task, and a slow or
absent Elasticsearch only costs buffered lines (bounded, counted when dropped).

`LogStream.close()` puts the descriptors back, lets the pump finish, marks the end of the log
in Elasticsearch (a document with section "end" one past the last line), drains the shipper
for a few seconds at most, then uploads the whole log and its completion marker to S3
(spinner.tasklog). Without Elasticsearch or S3 settings the pump still runs (standalone mode's
log is the file the executor gave the runner as stdout), because every line passes through the
secrets masker (spinner/runner/masking.py) before it leaves the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from spinner.runner.masking import SecretsMasker, masker
from spinner.tasklog import ArchiveMarker, SectionTracker, archive_key, level_of, marker_key

if TYPE_CHECKING:  # Elasticsearch's client is imported only when shipping: a runner without it starts faster
    from spinner.config import LogStoreSettings
    from spinner.logship import LogShipper
    from spinner.tasklog import LogId

log = logging.getLogger(__name__)

PUMP_JOIN_TIMEOUT = 5.0  # a subprocess that outlives the task may hold the pipe open: don't wait for it
SHIP_DRAIN_TIMEOUT = 3.0
ARCHIVE_ATTEMPTS = 5


class LogStream:
    def __init__(
        self,
        log_id: LogId,
        settings: LogStoreSettings,
        say: Callable[[str], None],
        secrets: SecretsMasker | None = None,
    ) -> None:
        self._log_id = log_id
        self._settings = settings
        self._say = say
        self._masker = secrets or masker()
        self.active = bool(settings.es_hosts or settings.logs_bucket)  # shipping or archiving
        self.lines = 0
        self.shipper: LogShipper | None = None
        self.archived = False
        self._orig_out = -1
        self._orig_err = -1
        self._spool: IO[bytes] | None = None
        self._pump: threading.Thread | None = None
        self._ship_thread: threading.Thread | None = None
        self._ship_loop: asyncio.AbstractEventLoop | None = None
        self._ship_done: asyncio.Event | None = None
        self._ship_ready = threading.Event()
        self._tracker = SectionTracker()
        self._shiplog_state: tuple[bool, list[logging.Handler]] = (True, [])

    # --- start ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.active and self._settings.es_hosts:
            self._ship_thread = threading.Thread(target=self._ship_main, name="logship", daemon=True)
            self._ship_thread.start()
            self._ship_ready.wait(10)
        if self.active:
            self._spool = tempfile.TemporaryFile()
            # The shipper's own warnings would go to fd 2, i.e. into the pipe, from another thread, where
            # they can land inside a line the task is writing: keep them out; close() reports the counts.
            shiplog = logging.getLogger("spinner.logship")
            self._shiplog_state = (shiplog.propagate, list(shiplog.handlers))
            shiplog.handlers = [logging.NullHandler()]
            shiplog.propagate = False
        sys.stdout.flush()
        sys.stderr.flush()
        self._orig_out = os.dup(1)
        self._orig_err = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._pump = threading.Thread(target=self._pump_main, args=(read_end,), name="logpump", daemon=True)
        self._pump.start()

    def _ship_main(self) -> None:
        async def ship() -> None:
            from elasticsearch import AsyncElasticsearch

            from spinner.logship import LogShipper

            self._ship_loop = asyncio.get_running_loop()
            self._ship_done = asyncio.Event()
            client = AsyncElasticsearch(hosts=self._settings.es_hosts)
            try:
                async with LogShipper(
                    client,
                    self._log_id,
                    index_pattern=self._settings.es_index_pattern,
                    max_buffered=self._settings.es_buffer_lines,
                    drain_timeout=SHIP_DRAIN_TIMEOUT,
                ) as shipper:
                    self.shipper = shipper
                    self._ship_ready.set()
                    await self._ship_done.wait()
            finally:
                self._ship_ready.set()
                await client.close()

        try:
            asyncio.run(ship())
        except Exception:  # shipping must never fail the task
            log.exception("log shipping stopped")

    def _pump_main(self, read_end: int) -> None:
        out = self._orig_out
        with open(read_end, "rb", buffering=1 << 16) as pipe:
            for line in pipe:
                raw = self._masker.redact_bytes(line)  # before the line goes anywhere
                view = memoryview(raw)
                while view:
                    try:
                        written = os.write(out, view)
                    except OSError:
                        break  # stdout is gone (a closed pod log pipe): the archive still gets the line
                    view = view[written:]
                if self._spool is None:
                    continue  # stdout only: nothing to ship or archive
                self._spool.write(raw if raw.endswith(b"\n") else raw + b"\n")
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                section = self._tracker.feed(text) or "readiness"
                if self.shipper is not None:
                    self.shipper.put(text, section=section, level=level_of(text), offset=self.lines)
                self.lines += 1

    # --- close ------------------------------------------------------------------------------

    def close(self) -> None:
        """Ends the log: stdout back to what it was, shipping drained, the archive written. Never raises."""
        if self._pump is None:
            return
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(self._orig_out, 1)
        os.dup2(self._orig_err, 2)
        os.close(self._orig_err)
        self._pump.join(PUMP_JOIN_TIMEOUT)
        complete = not self._pump.is_alive()
        if not complete:
            self._say("log: a process the task started still holds its output open; the log ends here")
            # What the pump still copies goes nowhere: not into the ended log, and not into a file opened
            # later under a reused descriptor number (the log's completion marker is opened next).
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._orig_out)
            os.close(null)
        if not self.active:
            self._release_stdout(complete)
            return
        shiplog = logging.getLogger("spinner.logship")
        shiplog.propagate, shiplog.handlers = self._shiplog_state[0], self._shiplog_state[1]
        if self.shipper is not None:
            if complete:
                self.shipper.put("", section="end", level="INFO", offset=self.lines)
            loop, done = self._ship_loop, self._ship_done
            if loop is not None and done is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(done.set)
        if self._ship_thread is not None:
            self._ship_thread.join(SHIP_DRAIN_TIMEOUT + 2)
            stats = self.shipper.stats if self.shipper is not None else None
            if stats is not None and (stats.dropped or stats.rejected):
                self._say(
                    f"log: {stats.dropped + stats.rejected} of {self.lines} lines did not reach Elasticsearch "
                    f"(dropped {stats.dropped}, refused {stats.rejected}); the S3 archive has them all"
                )
        if self._settings.logs_bucket:
            self.archived = self._archive()
        self._release_stdout(complete)

    def _release_stdout(self, complete: bool) -> None:
        if complete:  # else the pump still writes to it (to /dev/null now): keep the number taken
            os.close(self._orig_out)

    def _archive(self) -> bool:
        assert self._spool is not None
        self._spool.seek(0)
        content = self._spool.read()
        self._spool.close()
        key = archive_key(
            self._settings.logs_prefix,
            self._log_id.dag_id,
            self._log_id.run_id,
            self._log_id.task_id,
            self._log_id.try_number,
            self._log_id.map_index,
        )
        marker = ArchiveMarker.of(content)
        delay = 0.5
        for attempt in range(1, ARCHIVE_ATTEMPTS + 1):
            try:
                asyncio.run(self._upload(key, content, marker))
                return True
            except Exception as e:
                if attempt == ARCHIVE_ATTEMPTS:
                    self._say(f"log: could not archive to s3://{self._settings.logs_bucket}/{key}: {e}")
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
        return False

    async def _upload(self, key: str, content: bytes, marker: ArchiveMarker) -> None:
        from spinner.bundles import S3Location, s3_client

        location = S3Location(
            bucket=self._settings.logs_bucket,
            prefix=self._settings.logs_prefix,
            endpoint_url=self._settings.s3_endpoint_url,
            region=self._settings.s3_region,
        )
        async with s3_client(location, read_timeout=30.0) as client:
            s3: Any = client
            await s3.put_object(Bucket=location.bucket, Key=key, Body=content, ContentType="text/plain; charset=utf-8")
            # Last: a reader that finds the marker finds the whole log.
            await s3.put_object(
                Bucket=location.bucket, Key=marker_key(key), Body=marker.to_json(), ContentType="application/json"
            )
