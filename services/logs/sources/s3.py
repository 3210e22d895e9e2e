"""An ended try's log, from the S3 archive the runner wrote (the log, then its completion marker)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from services.logs.sources.base import LogChunk, SourceMissing, SourceUnavailable, State, split_lines, window
from spinner.bundles import MISSING_OBJECT, BundleRefused, BundleUnavailable, S3Location, get_object, s3_client
from spinner.tasklog import ArchiveMarker, LogId, archive_key, marker_key

CACHE_BYTES = 256 * 1024 * 1024  # archived logs never change: keep the recent ones parsed
MAX_LOG_BYTES = 2 * 1024 * 1024 * 1024


class S3Source:
    name = "s3"

    def __init__(self, location: S3Location, *, cache_bytes: int = CACHE_BYTES) -> None:
        self._location = location
        self._cache: OrderedDict[str, tuple[int, list[str]]] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached = 0
        self._client: Any = None
        self._client_cm: Any = None
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        async with self._lock:
            if self._client is None:
                self._client_cm = s3_client(self._location)
                self._client = await self._client_cm.__aenter__()
        return self._client

    async def aclose(self) -> None:
        if self._client_cm is not None:
            await self._client_cm.__aexit__(None, None, None)
            self._client = self._client_cm = None

    async def _get(self, key: str) -> bytes:
        client = await self._s3()
        try:
            found = await get_object(client, self._location, key, max_bytes=MAX_LOG_BYTES)
        except BundleRefused as e:
            if e.reason == MISSING_OBJECT:
                raise SourceMissing(f"s3: no archived log {key} (yet)") from None
            raise SourceUnavailable(f"s3: {e.detail}") from None
        except BundleUnavailable as e:
            raise SourceUnavailable(f"s3: {e}") from None
        assert found is not None  # no If-None-Match was sent: never a 304
        return found[0]

    async def read(self, key: LogId, offset: int, limit: int, state: State | None = None) -> LogChunk:
        log_key = archive_key(self._location.prefix, key.dag_id, key.run_id, key.task_id, key.try_number, key.map_index)
        try:
            marker = ArchiveMarker.parse(await self._get(marker_key(log_key)))
        except ValueError as e:
            raise SourceUnavailable(f"s3: the marker of {log_key} is damaged ({e})") from None
        texts = self._cached_lines(log_key, marker)
        if texts is None:
            content = await self._get(log_key)
            try:
                marker.check(content)
            except ValueError as e:
                raise SourceUnavailable(f"s3: {log_key} does not match its marker ({e})") from None
            texts = split_lines(content.decode("utf-8", "replace"), ended=True)
            self._remember(log_key, marker, texts)
        return window(texts, offset, limit, source=self.name, ended=True, state=state)

    def _cached_lines(self, log_key: str, marker: ArchiveMarker) -> list[str] | None:
        entry = self._cache.get(log_key + marker.sha256)
        if entry is None:
            return None
        self._cache.move_to_end(log_key + marker.sha256)
        return entry[1]

    def _remember(self, log_key: str, marker: ArchiveMarker, texts: list[str]) -> None:
        if marker.size > self._cache_bytes:
            return
        self._cache[log_key + marker.sha256] = (marker.size, texts)
        self._cached += marker.size
        while self._cached > self._cache_bytes and self._cache:
            _, (size, _) = self._cache.popitem(last=False)
            self._cached -= size
