"""Manifests are validated before anything is read; the retention of pushed objects never loses a kept version."""

from __future__ import annotations

import json

import pytest

from spinner.bundles import BundleRefused, PushRecord, bundle_version, parse_manifest
from spinner.cli.push import garbage

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


def manifest(files: dict[str, dict[str, object]], **extra: object) -> bytes:
    version = bundle_version({rel: str(e["sha256"]) for rel, e in files.items()})
    return json.dumps({"format": 1, "version": version, "files": files, **extra}).encode()


def entry(sha: str, size: int = 10, key: str = "") -> dict[str, object]:
    return {"sha256": sha, "size": size, "key": key or f"p/objects/{sha}"}


def test_a_good_manifest_parses() -> None:
    parsed = parse_manifest(manifest({"spinner_tier_1_0/t/a.py": entry(SHA_A)}), prefix="p", max_file_bytes=100)
    assert parsed.hashes() == {"spinner_tier_1_0/t/a.py": SHA_A}


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"../a.py": entry(SHA_A)}, "unsafe_path"),
        ({"x/./a.py": entry(SHA_A)}, "unsafe_path"),
        ({"/abs/a.py": entry(SHA_A)}, "unsafe_path"),
        ({"C:/a.py": entry(SHA_A)}, "unsafe_path"),
        ({"x\\..\\a.py": entry(SHA_A)}, "unsafe_path"),
        ({"x/a.py": entry(SHA_A, key="q/objects/" + SHA_A)}, "outside_prefix"),
        ({"x/a.py": entry(SHA_A, key="p/objects/../../q")}, "outside_prefix"),
        ({"x/a.py": entry(SHA_A, key="p/manifest.json")}, "outside_prefix"),
        ({"x/a.py": entry(SHA_A, size=101)}, "too_large"),
        ({"x/a.py": entry("nothex")}, "bad_manifest"),
        ({"x/a.py": {"sha256": SHA_A, "size": "10", "key": "p/objects/" + SHA_A}}, "bad_manifest"),
    ],
)
def test_bad_entries_are_refused_with_their_reason(files: dict[str, dict[str, object]], reason: str) -> None:
    with pytest.raises(BundleRefused) as e:
        parse_manifest(manifest(files), prefix="p", max_file_bytes=100)
    assert e.value.reason == reason


@pytest.mark.parametrize("raw", [b"", b"[]", b"{", b'{"format": 2}', b'{"format": 1, "version": "x", "files": {}}'])
def test_unparsable_or_inconsistent_manifests_are_refused(raw: bytes) -> None:
    with pytest.raises(BundleRefused) as e:
        parse_manifest(raw, prefix="p", max_file_bytes=100)
    assert e.value.reason in ("bad_manifest", "hash_mismatch")


def test_garbage_is_what_only_expired_versions_held() -> None:
    # v1 {A}; v2 {B} (A dropped); v3 {B, C}; keep 2 -> v1 expires: A goes, B and C stay.
    history = (PushRecord("v3", (SHA_C,), ()), PushRecord("v2", (SHA_B,), (SHA_A,)), PushRecord("v1", (SHA_A,), ()))
    assert garbage(history, 2, [], {SHA_B, SHA_C}) == {SHA_A}
    # v3 brings A back instead: nothing goes.
    history = (PushRecord("v3", (SHA_A,), ()), PushRecord("v2", (SHA_B,), (SHA_A,)), PushRecord("v1", (SHA_A,), ()))
    assert garbage(history, 2, [], {SHA_A, SHA_B}) == set()
    assert garbage(history[:2], 2, [], {SHA_A, SHA_B}) == set()  # nothing expired yet
