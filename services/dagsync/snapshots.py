"""Building snapshots and switching `current` atomically. Only dagsync writes here."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from spinner.snapshots import CURRENT, VERSIONS, SnapshotRef, current_snapshot, version_path


@dataclass(frozen=True)
class Manifest:
    """Relative path -> sha256 of every file in a DAG repository version."""

    files: dict[str, str]

    @property
    def version(self) -> str:
        digest = hashlib.sha256()
        for rel, file_hash in sorted(self.files.items()):
            digest.update(f"{rel}\0{file_hash}\n".encode())
        return digest.hexdigest()[:16]


class SnapshotStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / VERSIONS).mkdir(parents=True, exist_ok=True)

    def current(self) -> SnapshotRef | None:
        return current_snapshot(self.root)

    def has(self, version: str) -> bool:
        return version_path(self.root, version).is_dir()

    def install(self, version: str, files: dict[str, bytes]) -> SnapshotRef:
        """Writes a complete snapshot beside the others, then renames it into place."""
        final = version_path(self.root, version)
        if not final.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
            try:
                for rel, content in files.items():
                    dest = staging / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(content)
                os.chmod(staging, 0o755)
                os.rename(staging, final)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
                if not final.is_dir():
                    raise
        return SnapshotRef(version=version, path=final)

    def switch(self, version: str) -> SnapshotRef:
        """Points `current` at the version with one rename: readers see the old or the new, whole."""
        target = version_path(self.root, version)
        tmp_link = self.root / f".{CURRENT}-{os.getpid()}"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(os.path.join(VERSIONS, version), tmp_link)
        os.replace(tmp_link, self.root / CURRENT)
        return SnapshotRef(version=version, path=target)

    def prune(self, keep: int, protect: frozenset[str] = frozenset()) -> list[str]:
        """Removes all but the newest `keep` versions (by mtime), never current or protected ones."""
        current = self.current()
        keep_names = set(protect) | ({current.version} if current else set())
        versions = sorted(
            (p for p in (self.root / VERSIONS).iterdir() if p.is_dir()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        removed = []
        for p in versions[keep:]:
            if p.name not in keep_names:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
        return removed
