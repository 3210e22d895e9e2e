"""Reading DAG snapshots: `<root>/versions/<version>/` directories and a `current` symlink.

dagsync is the only writer (services/dagsync/snapshots.py); schedulers and task runners
read through these functions. A snapshot directory is complete before `current`
points at it and is never modified afterwards, so readers never see a mix of versions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CURRENT = "current"
VERSIONS = "versions"


@dataclass(frozen=True)
class SnapshotRef:
    version: str
    path: Path


def version_path(root: Path, version: str) -> Path:
    if not version or "/" in version or version.startswith("."):
        raise ValueError(f"invalid bundle version {version!r}")
    return root / VERSIONS / version


def current_snapshot(root: Path) -> SnapshotRef | None:
    """The snapshot `current` points at, or None before the first sync."""
    link = root / CURRENT
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    path = (root / target).resolve() if not os.path.isabs(target) else Path(target)
    return SnapshotRef(version=path.name, path=path)
