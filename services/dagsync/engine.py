"""Mirrors a DAG source into local snapshots, one complete version at a time.

A sync reads the source's manifest; when it names a new version, only the files whose
content changed are read (the rest are hard-linked from the current snapshot), the new
snapshot is written whole beside the others, and `current` is switched to it with one
rename. Bad input is refused and the last good snapshot stays; an unreachable source
leaves the snapshot as it is, and the status says since when it has not been confirmed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from services.dagsync.metrics import DagSyncMetrics
from services.dagsync.snapshots import Manifest, SnapshotStore
from services.dagsync.sources import DagSource
from spinner import events
from spinner.bundles import BundleRefused, BundleUnavailable, bounded_map
from spinner.events import EventBus
from spinner.snapshots import SnapshotRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncStatus:
    version: str
    path: str
    # Last time the snapshot was confirmed to be the source's newest good version.
    synced_at: dt.datetime | None
    file_count: int
    last_error: str
    last_attempt_at: dt.datetime | None = None
    stale_seconds: float = 0.0
    source: str = ""


class DagSync:
    def __init__(
        self,
        source: DagSource,
        store: SnapshotStore,
        bus: EventBus,
        *,
        keep: int,
        clock: Callable[[], dt.datetime],
        metrics: DagSyncMetrics | None = None,
        parallel: int = 16,
        in_use: Callable[[], Awaitable[frozenset[str]]] | None = None,
    ) -> None:
        """`in_use` names the versions runs still need (services/dagsync/in_use.py): never pruned."""
        self._source = source
        self._in_use = in_use
        self._store = store
        self._bus = bus
        self._keep = keep
        self._clock = clock
        self._metrics = metrics
        self._parallel = parallel
        self._lock = asyncio.Lock()
        self._started_at = clock()
        self._synced_at: dt.datetime | None = None
        self._attempt_at: dt.datetime | None = None
        self._file_count = 0
        self._last_error = ""
        self._refused_version = ""
        if metrics is not None:
            metrics.staleness = self.stale_seconds

    async def sync_once(self, *, force: bool = False) -> bool:
        """Makes `current` the source's newest version. True when it changed.

        `force` reads the whole manifest again and retries a version refused before.
        A failure keeps the last good snapshot and is reported in the status.
        """
        async with self._lock:
            started = time.perf_counter()
            try:
                return await self._sync(force)
            finally:
                if self._metrics is not None:
                    self._metrics.poll_duration.record(time.perf_counter() - started, self._metrics.attributes)

    async def _sync(self, force: bool) -> bool:
        self._attempt_at = self._clock()
        version = ""
        try:
            manifest = await self._source.manifest(force=force)
            version = manifest.version
            if version == self._refused_version and not force:
                return False  # refused already: logged and counted once, the status still says why
            current = self._store.current()
            changed = current is None or current.version != version
            if changed:
                started = time.perf_counter()
                downloaded = await self._build(manifest, current)
                self._store.switch(version)
                log.info(
                    "snapshot %s is current (%d files, %d read from %s) in %.2fs",
                    version, len(manifest.files), downloaded, self._source.describe(), time.perf_counter() - started,
                )  # fmt: skip
                if self._metrics is not None:
                    self._metrics.switches.add(1, self._metrics.attributes)
            self._file_count = len(manifest.files)
            self._synced_at = self._clock()
            self._last_error = ""
            self._refused_version = ""
        except BundleRefused as e:
            message = f"refused bundle {version or '(unreadable manifest)'}: {e}"
            if message != self._last_error:
                log.error("%s; keeping snapshot %s", message, self._current_version())
                if self._metrics is not None:
                    self._metrics.refusal(e.reason)
            self._last_error = message
            self._refused_version = version
            return False
        except (BundleUnavailable, OSError, ValueError) as e:
            self._last_error = str(e)
            log.warning("DAG sync failed, keeping snapshot %s: %s", self._current_version(), e)
            if self._metrics is not None:
                self._metrics.errors.add(1, self._metrics.attributes)
            return False
        if changed:
            await self._bus.publish(events.SNAPSHOT, {"version": version})
            # After the announcement: removing a snapshot of 10,000 files takes a while, and nobody waits on it.
            await self._prune()
        return changed

    async def _prune(self) -> None:
        """Old snapshots go, except the newest `keep` and those of runs that have not ended. When that
        cannot be known (the database is down), nothing goes: a later change prunes them."""
        try:
            protect = await self._in_use() if self._in_use is not None else frozenset()
        except (SQLAlchemyError, OSError) as e:
            log.warning("not pruning old snapshots: cannot read which versions runs still use (%s)", e)
            return
        try:
            removed = await asyncio.to_thread(self._store.prune, self._keep, protect)
        except OSError as e:
            log.warning("could not prune old snapshots: %s", e)
            return
        if removed:
            log.info("pruned snapshot(s) %s; kept %d still used by runs", ", ".join(removed), len(protect))

    async def _build(self, manifest: Manifest, current: SnapshotRef | None) -> int:
        """Writes the snapshot of `manifest` unless it exists; returns how many files were read."""
        version = manifest.version
        if self._store.has(version):
            return 0
        previous = self._store.hashes(current.version) if current is not None else None
        reusable = {
            rel
            for rel, sha in manifest.files.items()
            if previous is not None and current is not None and previous.get(rel) == sha
        }
        todo = [rel for rel in manifest.files if rel not in reusable]

        async def one(rel: str) -> tuple[str, bytes]:
            return rel, await self._source.read(rel, manifest.files[rel])

        contents = await bounded_map(one, todo, self._parallel)
        if self._metrics is not None and contents:
            self._metrics.downloaded.add(len(contents), self._metrics.attributes)
        await asyncio.to_thread(self._store.install, version, contents, manifest.files, current)
        return len(contents)

    def _current_version(self) -> str:
        current = self._store.current()
        return current.version if current else "(none)"

    def stale_seconds(self) -> float:
        """Seconds since the snapshot was last confirmed to be the newest (since start before any)."""
        since = self._synced_at or self._started_at
        return max((self._clock() - since).total_seconds(), 0.0)

    def status(self) -> SyncStatus:
        current = self._store.current()
        return SyncStatus(
            version=current.version if current else "",
            path=str(current.path) if current else "",
            synced_at=self._synced_at,
            file_count=self._file_count,
            last_error=self._last_error,
            last_attempt_at=self._attempt_at,
            stale_seconds=self.stale_seconds(),
            source=self._source.describe(),
        )
