"""dagsync mirrors the bundle in S3: incremental, atomic, and the last good snapshot survives bad input and outages."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import pytest

from spinner.bundles import bundle_version, manifest_key, object_key
from spinner.snapshots import current_snapshot

from .conftest import PARTITION, Bucket


def dag(name: str, n: int = 0) -> str:
    return f"from spinner import DAG, Tier\nwith DAG({name!r}, tier=Tier.TIER1) as dag:\n    pass\nN = {n}\n"


def files_of(path: Path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): p.read_text() for p in path.rglob("*") if p.is_file()}


async def test_sync_downloads_only_changed_files_and_applies_deletes(bucket: Bucket) -> None:
    for i in range(5):
        bucket.write(f"{PARTITION}/ads/d{i}.py", dag(f"d{i}"))
    first = await bucket.push()
    assert await bucket.sync.sync_once() is True
    snap = current_snapshot(bucket.root)
    assert snap is not None and snap.version == first.version
    assert len(files_of(snap.path)) == 6
    assert bucket.metric("spinner.dagsync.files.downloaded") == 6

    bucket.write(f"{PARTITION}/ads/d0.py", dag("d0", 1))
    bucket.remove(f"{PARTITION}/ads/d4.py")
    second = await bucket.push()
    assert await bucket.sync.sync_once() is True
    new = current_snapshot(bucket.root)
    assert new is not None and new.version == second.version
    assert bucket.metric("spinner.dagsync.files.downloaded") == 7  # one more: the changed file
    assert (new.path / PARTITION / "ads" / "d0.py").read_text() == dag("d0", 1)
    assert not (new.path / PARTITION / "ads" / "d4.py").exists()
    # The previous snapshot is intact for tasks pinned to it.
    assert (snap.path / PARTITION / "ads" / "d4.py").read_text() == dag("d4")
    assert (snap.path / PARTITION / "ads" / "d0.py").read_text() == dag("d0")
    # Nothing new: the poll is a 304 and nothing changes.
    assert await bucket.sync.sync_once() is False
    status = bucket.sync.status()
    assert status.version == second.version and status.last_error == "" and status.file_count == 5
    assert status.source == f"s3://{bucket.location.bucket}/team/dags"


async def test_a_concurrent_reader_never_sees_a_mix_of_two_versions(bucket: Bucket) -> None:
    """Each version's files all carry its number; a reader resolving `current` must see one number, all files."""
    names = [f"{PARTITION}/ads/d{i}.py" for i in range(20)]
    for rel in names:
        bucket.write(rel, dag(rel, 0))
    await bucket.push()
    await bucket.sync.sync_once()
    stop = threading.Event()
    seen: set[int] = set()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            snap = current_snapshot(bucket.root)
            if snap is None:
                problems.append("no current snapshot")
                continue
            try:
                texts = [(snap.path / rel).read_text() for rel in names]
            except OSError as e:
                problems.append(f"unreadable: {e}")
                continue
            numbers = {t.rsplit("N = ", 1)[1].strip() for t in texts}
            if len(numbers) != 1:
                problems.append(f"mixed versions {numbers} in {snap.version}")
            seen.update(int(n) for n in numbers)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 8):
            for rel in names:
                bucket.write(rel, dag(rel, n))
            await bucket.push()
            assert await bucket.sync.sync_once() is True
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert len(seen) >= 3  # the reader really ran across switches
    kept = sorted(p.name for p in (bucket.root / "versions").iterdir())
    assert len(kept) == 3  # keep=3: older snapshots are pruned


async def _bad_manifest(bucket: Bucket, mutate: str) -> tuple[str, bytes]:
    """A manifest.json with one kind of bad input, built from the good one (and the object bodies it needs)."""
    prefix = bucket.location.prefix
    good = json.loads(await bucket.get(manifest_key(prefix)))
    rel = f"{PARTITION}/ads/evil.py"
    body = dag("evil").encode()
    sha = hashlib.sha256(body).hexdigest()
    entry = {"sha256": sha, "size": len(body), "key": object_key(prefix, sha)}
    await bucket.put(object_key(prefix, sha), body)
    reason = mutate
    if mutate == "dotdot_path":
        rel, reason = f"{PARTITION}/../../etc/evil.py", "unsafe_path"
    elif mutate == "absolute_path":
        rel, reason = "/etc/evil.py", "unsafe_path"
    elif mutate == "dotdot_key":
        entry["key"], reason = f"{prefix}/objects/../../secrets/key", "outside_prefix"
    elif mutate == "outside_prefix":
        entry["key"], reason = f"other-team/objects/{sha}", "outside_prefix"
    elif mutate == "too_large":
        big = b"#" * (bucket.location.max_file_bytes + 1)
        sha = hashlib.sha256(big).hexdigest()
        entry = {"sha256": sha, "size": len(big), "key": object_key(prefix, sha)}
        await bucket.put(object_key(prefix, sha), big)
    elif mutate == "too_large_object":  # the manifest lies about the size; the object is refused by its length
        big = b"#" * (bucket.location.max_file_bytes + 1)
        await bucket.put(object_key(prefix, sha), big)
        reason = "too_large"
    elif mutate == "hash_mismatch":
        await bucket.put(object_key(prefix, sha), body + b"# tampered\n")
        entry["size"] = len(body) + len(b"# tampered\n")
    elif mutate == "missing_object":
        await bucket.client.delete_object(Bucket=bucket.location.bucket, Key=object_key(prefix, sha))
    good["files"][rel] = entry
    good["version"] = bundle_version({r: e["sha256"] for r, e in good["files"].items()})
    if mutate == "version_lies":
        good["version"], reason = "0123456789abcdef", "hash_mismatch"
    raw = json.dumps(good).encode()
    if mutate == "not_json":
        raw, reason = b'{"format": 1, "version": "abc", "files": {', "bad_manifest"
    elif mutate == "wrong_shape":
        raw, reason = json.dumps({"format": 1, "version": "x", "files": ["a.py"]}).encode(), "bad_manifest"
    return reason, raw


BAD_INPUTS = [
    "dotdot_path", "absolute_path", "dotdot_key", "outside_prefix", "too_large", "too_large_object",
    "hash_mismatch", "missing_object", "version_lies", "not_json", "wrong_shape",
]  # fmt: skip


@pytest.mark.parametrize("mutate", BAD_INPUTS)
async def test_bad_input_is_refused_logged_counted_and_the_last_good_snapshot_stays(
    bucket: Bucket, mutate: str, caplog: pytest.LogCaptureFixture
) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    good = await bucket.push()
    await bucket.sync.sync_once()
    reason, raw = await _bad_manifest(bucket, mutate)
    await bucket.put(manifest_key(bucket.location.prefix), raw)
    with caplog.at_level(logging.ERROR, logger="services.dagsync.engine"):
        assert await bucket.sync.sync_once() is False
        assert await bucket.sync.sync_once() is False  # polled again: not counted or logged twice
    snap = current_snapshot(bucket.root)
    assert snap is not None and snap.version == good.version
    assert not (snap.path / PARTITION / "ads" / "evil.py").exists()
    assert not (bucket.root.parent / "etc").exists() and not (bucket.root / "etc").exists()
    status = bucket.sync.status()
    assert status.version == good.version and status.last_error.startswith("refused bundle")
    assert reason in status.last_error
    assert bucket.metric("spinner.dagsync.refused", reason=reason) == 1
    refusals = [r for r in caplog.records if "refused bundle" in r.getMessage()]
    assert len(refusals) == 1 and reason in refusals[0].getMessage()
    # The next good push is taken as usual.
    bucket.write(f"{PARTITION}/ads/b.py", dag("b"))
    fixed = await bucket.push()
    assert await bucket.sync.sync_once() is True
    assert bucket.sync.status().version == fixed.version and bucket.sync.status().last_error == ""


async def test_an_outage_keeps_the_snapshot_reports_staleness_and_sync_resumes(bucket: Bucket) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    first = await bucket.push()
    await bucket.sync.sync_once()
    bucket.moto.stop()
    try:
        assert await bucket.sync.sync_once() is False
        status = bucket.sync.status()
        assert status.version == first.version and "unreachable" in status.last_error
        stale = status.stale_seconds
        assert await bucket.sync.sync_once() is False
        assert bucket.sync.status().stale_seconds >= stale
        assert bucket.metric("spinner.dagsync.errors") == 2
        snap = current_snapshot(bucket.root)
        assert snap is not None and (snap.path / PARTITION / "ads" / "a.py").read_text() == dag("a")
    finally:
        bucket.moto.start()
    bucket.write(f"{PARTITION}/ads/a.py", dag("a", 1))
    second = await bucket.push()
    assert await bucket.sync.sync_once() is True
    status = bucket.sync.status()
    assert status.version == second.version and status.last_error == "" and status.stale_seconds < 5


async def test_an_empty_bucket_is_not_bad_input_and_the_first_push_is_taken(bucket: Bucket) -> None:
    assert await bucket.sync.sync_once() is False
    status = bucket.sync.status()
    assert status.version == "" and "no bundle is published" in status.last_error
    assert bucket.metric("spinner.dagsync.refused") == 0
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    pushed = await bucket.push()
    assert await bucket.sync.sync_once() is True
    assert bucket.sync.status().version == pushed.version
