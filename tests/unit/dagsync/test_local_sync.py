"""dagsync mirrors a local DAG folder into immutable snapshots and switches `current` atomically."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from services.dagsync.engine import DagSync
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import LocalFolderSource
from spinner.snapshots import current_snapshot


class RecordingBus:
    """Collects published events (an EventBus with no broker behind it)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, kind: str, payload: dict[str, Any]) -> None:
        self.published.append((kind, payload))

    async def subscribe(self, kinds: object) -> Any:  # pragma: no cover - not used here
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def make(
    tmp_path: Path, keep: int = 2, in_use: Callable[[], Awaitable[frozenset[str]]] | None = None
) -> tuple[Path, Path, DagSync, RecordingBus]:
    repo, root = tmp_path / "repo", tmp_path / "snapshots"
    (repo / "spinner_tier_1_0" / "team").mkdir(parents=True)
    bus = RecordingBus()
    sync = DagSync(
        LocalFolderSource(repo), SnapshotStore(root), bus, keep=keep, clock=lambda: dt.datetime.now(dt.UTC),
        in_use=in_use,
    )  # fmt: skip
    return repo, root, sync, bus


async def change(repo: Path, root: Path, sync: DagSync, text: str) -> str:
    (repo / "spinner_tier_1_0" / "team" / "a.py").write_text(text)
    assert await sync.sync_once() is True
    snap = current_snapshot(root)
    assert snap is not None
    return snap.version


def kept(root: Path) -> set[str]:
    return {p.name for p in (root / "versions").iterdir()}


async def test_first_sync_creates_a_snapshot_and_announces_it(tmp_path: Path) -> None:
    repo, root, sync, bus = make(tmp_path)
    (repo / "spinner_tier_1_0" / "team" / "a.py").write_text("A = 1\n")
    (repo / "spinner_tier_1_0" / "team" / "__pycache__").mkdir()
    (repo / "spinner_tier_1_0" / "team" / "__pycache__" / "a.pyc").write_bytes(b"junk")
    assert await sync.sync_once() is True
    snap = current_snapshot(root)
    assert snap is not None
    assert (snap.path / "spinner_tier_1_0" / "team" / "a.py").read_text() == "A = 1\n"
    assert not (snap.path / "spinner_tier_1_0" / "team" / "__pycache__").exists()
    assert bus.published == [("snapshot", {"version": snap.version})]
    assert sync.status().file_count == 1 and sync.status().last_error == ""


async def test_unchanged_folder_keeps_the_version_and_a_change_makes_a_new_one(tmp_path: Path) -> None:
    repo, root, sync, _bus = make(tmp_path)
    f = repo / "spinner_tier_1_0" / "team" / "a.py"
    f.write_text("A = 1\n")
    await sync.sync_once()
    first = current_snapshot(root)
    assert await sync.sync_once() is False
    assert current_snapshot(root) == first
    f.write_text("A = 2\n")
    assert await sync.sync_once() is True
    second = current_snapshot(root)
    assert second is not None and first is not None and second.version != first.version
    # The old snapshot is untouched: a task pinned to it still reads what it was scheduled with.
    assert (first.path / "spinner_tier_1_0" / "team" / "a.py").read_text() == "A = 1\n"
    assert (second.path / "spinner_tier_1_0" / "team" / "a.py").read_text() == "A = 2\n"


async def test_old_snapshots_are_pruned_beyond_keep(tmp_path: Path) -> None:
    repo, root, sync, _ = make(tmp_path, keep=2)
    f = repo / "spinner_tier_1_0" / "team" / "a.py"
    versions = []
    for i in range(4):
        f.write_text(f"A = {i}\n")
        await sync.sync_once()
        snap = current_snapshot(root)
        assert snap is not None
        versions.append(snap.version)
    kept = sorted(p.name for p in (root / "versions").iterdir())
    assert len(kept) == 2 and versions[-1] in kept


async def test_a_version_runs_still_use_is_kept_until_they_end(tmp_path: Path) -> None:
    used: set[str] = set()

    async def in_use() -> frozenset[str]:
        return frozenset(used)

    repo, root, sync, _ = make(tmp_path, keep=2, in_use=in_use)
    pinned = await change(repo, root, sync, "A = 0\n")
    used.add(pinned)  # a run was created from this version and has not ended
    newer = [await change(repo, root, sync, f"A = {i}\n") for i in range(1, 5)]
    assert kept(root) == {pinned, *newer[-2:]}
    assert (root / "versions" / pinned / "spinner_tier_1_0" / "team" / "a.py").read_text() == "A = 0\n"
    used.clear()  # the run ended: the next change prunes its version
    last = await change(repo, root, sync, "A = 5\n")
    assert kept(root) == {newer[-1], last}


async def test_when_the_versions_in_use_cannot_be_read_nothing_is_pruned(tmp_path: Path) -> None:
    async def database_down() -> frozenset[str]:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("database down"))

    repo, root, sync, _ = make(tmp_path, keep=1, in_use=database_down)
    versions = [await change(repo, root, sync, f"A = {i}\n") for i in range(3)]  # syncing goes on
    assert kept(root) == set(versions)
    assert current_snapshot(root) is not None and current_snapshot(root).version == versions[-1]  # type: ignore[union-attr]


async def test_missing_source_keeps_the_last_good_snapshot(tmp_path: Path) -> None:
    repo, root, sync, _ = make(tmp_path)
    (repo / "spinner_tier_1_0" / "team" / "a.py").write_text("A = 1\n")
    await sync.sync_once()
    good = current_snapshot(root)
    (repo / "spinner_tier_1_0" / "team" / "a.py").unlink()
    repo.rename(tmp_path / "gone")
    assert await sync.sync_once() is False
    assert current_snapshot(root) == good
    assert "does not exist" in sync.status().last_error
