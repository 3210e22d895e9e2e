"""Where DAG repositories come from. One small interface; the local folder is the standalone source.

The S3 source (issue 5) implements the same two methods.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from pathlib import Path

from services.dagsync.snapshots import Manifest

_SKIP_DIRS = {"__pycache__", ".git"}


class DagSource(abc.ABC):
    @abc.abstractmethod
    async def manifest(self) -> Manifest:
        """Every file of the newest version with its sha256."""

    @abc.abstractmethod
    async def read(self, rel_path: str) -> bytes:
        """One file's content."""


class LocalFolderSource(DagSource):
    """A folder on this machine (a checkout of the DAG repository)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _walk(self) -> dict[str, str]:
        if not self.folder.is_dir():
            raise FileNotFoundError(f"DAG folder {self.folder} does not exist")
        files: dict[str, str] = {}
        for path in sorted(self.folder.rglob("*")):
            rel = path.relative_to(self.folder)
            if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts):
                continue
            if path.is_file() and not path.is_symlink():
                files[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        return files

    async def manifest(self) -> Manifest:
        return Manifest(files=await asyncio.to_thread(self._walk))

    async def read(self, rel_path: str) -> bytes:
        return await asyncio.to_thread((self.folder / rel_path).read_bytes)
