"""Local log files (standalone mode): every try has its own file, inside the log folder, whatever its ids."""

from __future__ import annotations

from pathlib import Path

from spinner.logpaths import local_log_path

TRICKY = [
    "nightly rerun", "nightly_rerun", "nightly%20rerun", "nightly%2520rerun", "a/b", "a_b", "a\\b", "..", ".", "%",
    "manual__2026-11-30T12:55:05.593965+00:00", "scheduled__2026-11-30T00:00:00+00:00", "café", "caf_", "ü" * 250,
    "ü" * 249 + "a", "x" * 250, "~", "_~_",
]  # fmt: skip


def test_different_run_ids_never_share_a_log_file(tmp_path: Path) -> None:
    paths = [local_log_path(tmp_path, "etl", run_id, "load", 1) for run_id in TRICKY]
    assert len(set(paths)) == len(TRICKY)


def test_every_path_is_inside_the_log_folder_and_can_be_written(tmp_path: Path) -> None:
    for run_id in TRICKY:
        path = local_log_path(tmp_path, "etl", run_id, "load", 1)
        assert path.resolve().is_relative_to(tmp_path.resolve()) and len(path.relative_to(tmp_path).parts) == 4
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id)  # no part longer than a file name may be
    for run_id in TRICKY:
        assert local_log_path(tmp_path, "etl", run_id, "load", 1).read_text() == run_id


def test_the_usual_ids_are_readable_in_the_path(tmp_path: Path) -> None:
    path = local_log_path(tmp_path, "etl", "scheduled__2026-11-30T00:00:00+00:00", "load", 2)
    assert (
        path
        == tmp_path / "dag_id=etl" / "run_id=scheduled__2026-11-30T00:00:00+00:00" / "task_id=load" / "attempt=2.log"
    )


def test_an_instance_of_a_mapped_task_has_its_own_folder_and_unmapped_paths_stay(tmp_path: Path) -> None:
    unmapped = local_log_path(tmp_path, "etl", "manual__1", "load", 2)
    assert unmapped == local_log_path(tmp_path, "etl", "manual__1", "load", 2, -1)
    assert unmapped == tmp_path / "dag_id=etl" / "run_id=manual__1" / "task_id=load" / "attempt=2.log"
    third = local_log_path(tmp_path, "etl", "manual__1", "load", 2, 3)
    assert third == tmp_path / "dag_id=etl" / "run_id=manual__1" / "task_id=load" / "map_index=3" / "attempt=2.log"
    paths = {unmapped, third, *(local_log_path(tmp_path, "etl", "manual__1", "load", 2, i) for i in range(3))}
    assert len(paths) == 5
    for path in paths:  # a folder of instances and an unmapped task's files live side by side
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(path))
    assert all(p.read_text() == str(p) for p in paths)
