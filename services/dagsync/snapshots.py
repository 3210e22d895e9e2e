"""Building snapshots and switching `current` atomically. Only dagsync writes here.

Layout under the snapshot root: `versions/<version>/` (complete, never modified after the
rename that creates it), `manifests/<version>.json` (path -> sha256 of that version, so the
next version can reuse unchanged files by hard link instead of downloading them again),
and the `current` symlink.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from spinner.bundles import bundle_version
from spinner.snapshots import CURRENT, VERSIONS, SnapshotRef, current_snapshot, version_path

MANIFESTS = "manifests"


@dataclass(frozen=True)
class Manifest:
    """Relative path -> sha256 of every file in a DAG repository version."""

    files: dict[str, str]

    @cached_property
    def version(self) -> str:
        # Hashing 10,000 entries takes milliseconds: an idle poll reuses the manifest object, and this.
        return bundle_version(self.files)


class SnapshotStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / VERSIONS).mkdir(parents=True, exist_ok=True)
        (root / MANIFESTS).mkdir(parents=True, exist_ok=True)

    def current(self) -> SnapshotRef | None:
        return current_snapshot(self.root)

    def has(self, version: str) -> bool:
        return version_path(self.root, version).is_dir()

    def hashes(self, version: str) -> dict[str, str] | None:
        """The file list a version was built from, or None when it is not known here."""
        try:
            data = json.loads((self.root / MANIFESTS / f"{version}.json").read_text())
        except (OSError, ValueError):
            return None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None

    def install(
        self,
        version: str,
        files: Mapping[str, bytes],
        hashes: Mapping[str, str] | None = None,
        reuse: SnapshotRef | None = None,
    ) -> SnapshotRef:
        """Writes a complete snapshot beside the others, then renames it into place.

        `files` holds new content; every other path of `hashes` is hard-linked (or copied)
        from `reuse`, a snapshot that has the same content at the same path.
        """
        final = version_path(self.root, version)
        all_hashes = dict(hashes) if hashes is not None else {}
        if not final.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
            try:
                self._fill(str(staging), files, all_hashes, reuse)
                os.chmod(staging, 0o755)
                if all_hashes:
                    self._write_manifest(version, all_hashes)
                os.rename(staging, final)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
                if not final.is_dir():
                    raise
        return SnapshotRef(version=version, path=final)

    @staticmethod
    def _fill(staging: str, files: Mapping[str, bytes], hashes: Mapping[str, str], reuse: SnapshotRef | None) -> None:
        # Plain strings and one mkdir per folder: with 10,000 files this is most of a switch's cost.
        for folder in sorted({posixpath.dirname(rel) for rel in (*files, *hashes)} - {""}):
            os.makedirs(os.path.join(staging, folder), exist_ok=True)
        for rel, content in files.items():
            with open(os.path.join(staging, rel), "wb") as f:
                f.write(content)
        source = str(reuse.path) if reuse is not None else ""
        for rel in hashes:
            if rel in files:
                continue
            if not source:
                raise FileNotFoundError(f"no content for {rel} and no snapshot to reuse it from")
            src, dest = os.path.join(source, rel), os.path.join(staging, rel)
            try:
                os.link(src, dest)
            except OSError:
                shutil.copyfile(src, dest)

    def _write_manifest(self, version: str, hashes: Mapping[str, str]) -> None:
        path = self.root / MANIFESTS / f"{version}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(dict(hashes), separators=(",", ":")))
        os.replace(tmp, path)

    def switch(self, version: str) -> SnapshotRef:
        """Points `current` at the version with one rename: readers see the old or the new, whole."""
        target = version_path(self.root, version)
        tmp_link = self.root / f".{CURRENT}-{os.getpid()}"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(os.path.join(VERSIONS, version), tmp_link)
        os.replace(tmp_link, self.root / CURRENT)
        # The switch time orders versions for pruning: the newest `keep` switched-to stay.
        os.utime(target)
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
                (self.root / MANIFESTS / f"{p.name}.json").unlink(missing_ok=True)
                removed.append(p.name)
        return removed
