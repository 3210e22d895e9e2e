"""Mirrors a DAG source into local snapshots, one complete version at a time."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import DagSource
from spinner import events
from spinner.events import EventBus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncStatus:
    version: str
    path: str
    synced_at: dt.datetime | None
    file_count: int
    last_error: str


class DagSync:
    def __init__(
        self,
        source: DagSource,
        store: SnapshotStore,
        bus: EventBus,
        *,
        keep: int,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._source = source
        self._store = store
        self._bus = bus
        self._keep = keep
        self._clock = clock
        self._synced_at: dt.datetime | None = None
        self._file_count = 0
        self._last_error = ""

    async def sync_once(self) -> bool:
        """Makes `current` the source's newest version. True when it changed.

        A failure keeps the last good snapshot and is reported in the status.
        """
        try:
            manifest = await self._source.manifest()
            version = manifest.version
            current = self._store.current()
            changed = current is None or current.version != version
            if changed:
                if not self._store.has(version):
                    files: dict[str, bytes] = {}
                    for rel, expected in manifest.files.items():
                        content = await self._source.read(rel)
                        if hashlib.sha256(content).hexdigest() != expected:
                            raise ValueError(f"{rel} changed while it was being copied; will retry")
                        files[rel] = content
                    self._store.install(version, files)
                self._store.switch(version)
                self._store.prune(self._keep)
                log.info("snapshot %s is current (%d files)", version, len(manifest.files))
            self._file_count = len(manifest.files)
            self._synced_at = self._clock()
            self._last_error = ""
        except (OSError, ValueError) as e:
            self._last_error = str(e)
            log.warning("DAG sync failed, keeping the last good snapshot: %s", e)
            return False
        if changed:
            await self._bus.publish(events.SNAPSHOT, {"version": version})
        return changed

    def status(self) -> SyncStatus:
        current = self._store.current()
        return SyncStatus(
            version=current.version if current else "",
            path=str(current.path) if current else "",
            synced_at=self._synced_at,
            file_count=self._file_count,
            last_error=self._last_error,
        )
