"""Where DAG repositories come from. One small interface: the local folder (standalone) and S3.

`manifest()` names the newest version; `read()` returns one file of it, verified against
the manifest. Sources raise `BundleUnavailable` when they cannot be asked now (dagsync
retries on its next poll) and `BundleRefused` when the input itself is bad (dagsync keeps
the last good snapshot and does not retry the same version).
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from pathlib import Path
from typing import Any

from services.dagsync.snapshots import Manifest
from spinner.bundles import (
    BAD_MANIFEST,
    MANIFEST,
    MISSING_OBJECT,
    BundleFile,
    BundleManifest,
    BundleRefused,
    BundleUnavailable,
    S3Location,
    get_object,
    manifest_key,
    parse_manifest,
    verify,
)

_SKIP_DIRS = {"__pycache__", ".git"}
# The manifest of 10,000 files is about 2 MB; far beyond that is not a manifest we accept.
MAX_MANIFEST_BYTES = 256 * 1024 * 1024


class DagSource(abc.ABC):
    @abc.abstractmethod
    async def manifest(self, *, force: bool = False) -> Manifest:
        """Every file of the newest version with its sha256. `force`: no cached answer."""

    @abc.abstractmethod
    async def read(self, rel_path: str, sha256: str) -> bytes:
        """One file's content, checked against the hash the manifest gave."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where this source reads from, for logs and status."""


def scan_folder(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file of a DAG repository folder (no caches, no hidden files)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"DAG folder {folder} does not exist")
    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            files[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


class LocalFolderSource(DagSource):
    """A folder on this machine (a checkout of the DAG repository)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def manifest(self, *, force: bool = False) -> Manifest:
        return Manifest(files=await asyncio.to_thread(scan_folder, self.folder))

    async def read(self, rel_path: str, sha256: str) -> bytes:
        content = await asyncio.to_thread((self.folder / rel_path).read_bytes)
        if hashlib.sha256(content).hexdigest() != sha256:
            # Someone is editing the folder: not bad input, just too early. The next poll retries.
            raise ValueError(f"{rel_path} changed while it was being copied; will retry")
        return content

    def describe(self) -> str:
        return str(self.folder)


class S3Source(DagSource):
    """A bundle published by `spinner dags push`: `manifest.json` polled with one conditional GET.

    The manifest's ETag is remembered; while it matches, S3 answers 304 with no body, so an
    idle poll costs one small request whatever the number of files.
    """

    def __init__(self, client: Any, location: S3Location) -> None:
        self._client = client
        self.location = location
        self._etag = ""
        self._last: BundleManifest | BundleRefused | None = None
        self._manifest: Manifest | None = None

    async def manifest(self, *, force: bool = False) -> Manifest:
        etag = "" if force or self._last is None else self._etag
        try:
            found = await get_object(
                self._client, self.location, manifest_key(self.location.prefix), max_bytes=MAX_MANIFEST_BYTES,
                if_none_match=etag,
            )  # fmt: skip
        except BundleRefused as e:
            if e.reason == MISSING_OBJECT:  # nothing published yet (or the prefix is wrong): not bad input
                raise BundleUnavailable(f"no bundle is published at {self.location} (no {MANIFEST})") from None
            raise
        if found is not None:
            raw, self._etag = found
            loc = self.location
            self._manifest = None
            try:
                self._last = parse_manifest(raw, prefix=loc.prefix, max_file_bytes=loc.max_file_bytes)
                self._manifest = Manifest(files=self._last.hashes())
            except BundleRefused as e:
                self._last = e
        if isinstance(self._last, BundleRefused):
            raise self._last
        if self._manifest is None:  # pragma: no cover - a 304 always follows a first full answer
            raise BundleRefused(BAD_MANIFEST, "S3 answered 304 to the first read of the manifest")
        # Unchanged (304): the same object, its version already computed. An idle poll does no work
        # proportional to the number of files.
        return self._manifest

    async def read(self, rel_path: str, sha256: str) -> bytes:
        last = self._last
        entry: BundleFile | None = last.files.get(rel_path) if isinstance(last, BundleManifest) else None
        if entry is None or entry.sha256 != sha256:
            raise BundleUnavailable(f"{rel_path} is not in the manifest just read; the next poll retries")
        got = await get_object(self._client, self.location, entry.key, max_bytes=self.location.max_file_bytes)
        if got is None:  # pragma: no cover - no If-None-Match was sent
            raise BundleUnavailable(f"S3 answered 304 for {entry.key}")
        verify(rel_path, got[0], entry)
        return got[0]

    def describe(self) -> str:
        return str(self.location)
