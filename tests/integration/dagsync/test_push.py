"""`spinner dags push` publishes a repository folder to S3: only what changed, manifest last, old versions kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spinner.bundles import fetch_version, manifest_key, object_key, version_key
from spinner.cli.main import main

from .conftest import PARTITION, Bucket


def dag(name: str, body: str = "") -> str:
    return f"from spinner import DAG, Tier\nwith DAG({name!r}, tier=Tier.TIER1) as dag:\n    pass\n{body}"


async def test_first_push_uploads_everything_and_the_manifest_names_every_file(bucket: Bucket) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    bucket.write(f"{PARTITION}/ads/b.py", dag("b"))
    result = await bucket.push()
    assert (result.files, result.uploaded, result.unchanged) == (3, 3, False)
    manifest = json.loads(await bucket.get(manifest_key(bucket.location.prefix)))
    assert manifest["version"] == result.version
    assert set(manifest["files"]) == {"plugins/helpers.py", f"{PARTITION}/ads/a.py", f"{PARTITION}/ads/b.py"}
    entry = manifest["files"][f"{PARTITION}/ads/a.py"]
    assert await bucket.get(entry["key"]) == dag("a").encode()
    assert version_key(bucket.location.prefix, result.version) in await bucket.keys()


async def test_a_second_push_uploads_only_the_changed_file_and_drops_the_removed_one(bucket: Bucket) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    bucket.write(f"{PARTITION}/ads/b.py", dag("b"))
    first = await bucket.push()
    bucket.write(f"{PARTITION}/ads/a.py", dag("a", "X = 2\n"))
    bucket.remove(f"{PARTITION}/ads/b.py")
    second = await bucket.push()
    assert (second.uploaded, second.removed_files) == (1, 1)
    assert second.version != first.version
    manifest = json.loads(await bucket.get(manifest_key(bucket.location.prefix)))
    assert set(manifest["files"]) == {"plugins/helpers.py", f"{PARTITION}/ads/a.py"}
    # Pushing the same folder again changes nothing.
    again = await bucket.push()
    assert again.unchanged and again.version == second.version and again.uploaded == 0


async def test_old_versions_stay_fetchable_and_objects_beyond_keep_are_deleted(bucket: Bucket, tmp_path: Path) -> None:
    versions = []
    for i in range(4):
        bucket.write(f"{PARTITION}/ads/a.py", dag("a", f"N = {i}\n"))
        versions.append((await bucket.push(keep=2)).version)
    keys = await bucket.keys()
    prefix = bucket.location.prefix
    # Two versions kept: the newest and the one before it, with their files.
    assert {version_key(prefix, v) for v in versions[2:]} <= keys
    assert not {version_key(prefix, v) for v in versions[:2]} & keys
    import hashlib

    live = {object_key(prefix, hashlib.sha256(dag("a", f"N = {i}\n").encode()).hexdigest()) for i in (2, 3)}
    gone = {object_key(prefix, hashlib.sha256(dag("a", f"N = {i}\n").encode()).hexdigest()) for i in (0, 1)}
    assert live <= keys and not gone & keys
    # A task scheduled with the previous version still gets exactly that version.
    path, count = await fetch_version(bucket.client, bucket.location, versions[2], tmp_path / "cache" / versions[2])
    assert count == 2 and (path / PARTITION / "ads" / "a.py").read_text() == dag("a", "N = 2\n")


async def test_a_file_added_back_after_it_was_dropped_is_not_deleted(bucket: Bucket) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    await bucket.push(keep=2)
    bucket.write(f"{PARTITION}/ads/a.py", dag("a", "N = 1\n"))
    await bucket.push(keep=2)
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))  # back to the first content
    await bucket.push(keep=2)
    bucket.write(f"{PARTITION}/ads/b.py", dag("b"))
    await bucket.push(keep=2)
    manifest = json.loads(await bucket.get(manifest_key(bucket.location.prefix)))
    keys = await bucket.keys()
    assert all(entry["key"] in keys for entry in manifest["files"].values())


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("README.md", "files at the top level are not allowed"),
        ("dags_tier_1_0/ads/a.py", "is not a partition folder"),
        ("spinner_tier_4_0/ads/a.py", "is not a partition folder"),
        (f"{PARTITION}/a.py", "DAG files go in a team folder"),
    ],
)
def test_a_bad_layout_is_refused_and_nothing_is_written(
    bucket: Bucket, capsys: pytest.CaptureFixture[str], rel: str, message: str
) -> None:
    bucket.write(f"{PARTITION}/ads/ok.py", dag("ok"))
    bucket.write(rel, "x = 1\n")
    argv = ["dags", "push", str(bucket.repo), "--bucket", bucket.location.bucket, "--prefix", "team/dags",
            "--endpoint-url", bucket.moto.endpoint]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "nothing was pushed" in err and message in err


async def test_a_file_over_the_size_limit_is_refused_before_upload(bucket: Bucket) -> None:
    from spinner.cli.push import PushError

    bucket.write(f"{PARTITION}/ads/big.py", "#" * (bucket.location.max_file_bytes + 1))
    with pytest.raises(PushError, match="over the limit"):
        await bucket.push()
    assert await bucket.keys() == set()


def test_the_cli_pushes_shows_progress_and_prints_the_version(
    bucket: Bucket, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket.write(f"{PARTITION}/ads/a.py", dag("a"))
    argv = ["dags", "push", str(bucket.repo), "--bucket", bucket.location.bucket, "--prefix", "team/dags",
            "--endpoint-url", bucket.moto.endpoint]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    version = out.strip()
    assert len(version) == 16
    assert "uploaded 2/2 files" in err and f"published version {version}" in err
    assert main(argv) == 0
    assert "already published" in capsys.readouterr().err


def test_the_cli_says_when_s3_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], moto: object
) -> None:
    repo = tmp_path / "repo"
    (repo / PARTITION / "ads").mkdir(parents=True)
    (repo / PARTITION / "ads" / "a.py").write_text(dag("a"))
    argv = ["dags", "push", str(repo), "--bucket", "nowhere", "--endpoint-url", "http://127.0.0.1:1"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: S3 at http://127.0.0.1:1 is unreachable")
