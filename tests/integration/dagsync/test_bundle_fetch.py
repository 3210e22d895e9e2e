"""A task runner gets the exact bundle version its run was scheduled with: from this host, a cache, or S3."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from spinner.bundles import ensure_snapshot, object_key

from .conftest import PARTITION, Bucket


def dag(name: str, n: int = 0) -> str:
    return f"from spinner import DAG, Tier\nwith DAG({name!r}, tier=Tier.TIER1) as dag:\n    pass\nN = {n}\n"


def use_bucket(monkeypatch: pytest.MonkeyPatch, bucket: Bucket, cache: Path) -> None:
    monkeypatch.setenv("SPINNER_DAGS_BUCKET", bucket.location.bucket)
    monkeypatch.setenv("SPINNER_DAGS_PREFIX", bucket.location.prefix)
    monkeypatch.setenv("SPINNER_S3_ENDPOINT_URL", bucket.moto.endpoint)
    monkeypatch.setenv("SPINNER_BUNDLE_CACHE", str(cache))


async def test_a_runner_fetches_its_pinned_version_not_the_newest(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a", 1))
    bucket.write("spinner_tier_2_0/web/other.py", dag("other"))
    pinned = await bucket.push()
    bucket.write(f"{PARTITION}/ads/a.py", dag("a", 2))
    await bucket.push()
    use_bucket(monkeypatch, bucket, tmp_path / "cache")
    said: list[str] = []
    missing = tmp_path / "host" / "snapshots" / "versions" / pinned.version  # not on this host
    path = await asyncio.to_thread(ensure_snapshot, missing, f"{PARTITION}/ads/a.py", said.append)
    assert (path / PARTITION / "ads" / "a.py").read_text() == dag("a", 1)
    assert (path / "plugins" / "helpers.py").is_file()
    assert not (path / "spinner_tier_2_0").exists()  # only the DAG's partition and plugins
    assert any(pinned.version in m and "verified" in m for m in said)
    # The second try on this host uses the cache, even with S3 gone.
    bucket.moto.stop()
    try:
        again = await asyncio.to_thread(ensure_snapshot, missing, f"{PARTITION}/ads/a.py", said.append)
    finally:
        bucket.moto.start()
    assert again == path


async def test_a_snapshot_on_this_host_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_DAGS_BUCKET", "unused")
    local = tmp_path / "versions" / "0123456789abcdef"
    local.mkdir(parents=True)
    assert ensure_snapshot(local, f"{PARTITION}/ads/a.py", print) == local


async def test_tampered_content_is_refused_and_nothing_is_cached(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    pushed = await bucket.push()
    sha = hashlib.sha256(dag("a").encode()).hexdigest()
    await bucket.put(object_key(bucket.location.prefix, sha), dag("a").replace("pass", "1/0").encode())
    use_bucket(monkeypatch, bucket, tmp_path / "cache")
    missing = tmp_path / "versions" / pushed.version
    with pytest.raises(FileNotFoundError, match="hash_mismatch"):
        await asyncio.to_thread(ensure_snapshot, missing, f"{PARTITION}/ads/a.py", print)
    assert not any((tmp_path / "cache").glob(f"{pushed.version}*"))


async def test_an_unknown_version_fails_the_readiness_check_with_the_reason(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    await bucket.push()
    use_bucket(monkeypatch, bucket, tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        await asyncio.to_thread(
            ensure_snapshot, tmp_path / "versions" / "ffffffffffffffff", f"{PARTITION}/a/b.py", print
        )
