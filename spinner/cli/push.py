"""`spinner dags push DIR --bucket B --prefix P`: publishes a DAG repository folder as a bundle in S3.

The folder is checked first (partition folders, plugins/, sizes); nothing is written when
it is wrong. Then only the files S3 does not have yet are uploaded (objects are addressed
by content), the version's manifest is written, objects no retained version needs any
more are deleted, and `manifest.json` is written last: a reader sees the old version or
the new one, never a mix. See spinner/bundles.py for the layout.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spinner.bundles import (
    PARTITION_RE,
    PLUGINS,
    BundleFile,
    BundleManifest,
    BundleRefused,
    BundleUnavailable,
    PushRecord,
    S3Location,
    bundle_version,
    check_path,
    get_object,
    manifest_key,
    object_key,
    parse_manifest,
    s3_client,
    version_key,
)

MAX_MANIFEST_BYTES = 256 * 1024 * 1024


class PushError(Exception):
    pass


@dataclass(frozen=True)
class LocalFile:
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class PushResult:
    version: str
    files: int
    uploaded: int
    removed_files: int
    deleted_objects: int
    unchanged: bool


def scan(folder: Path) -> dict[str, LocalFile]:
    """Every file of the repository folder, skipping caches and hidden files (as the local source does)."""
    import hashlib

    if not folder.is_dir():
        raise PushError(f"{folder} is not a folder")
    found: dict[str, LocalFile] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in ("__pycache__", ".git") or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            found[rel.as_posix()] = LocalFile(path, hashlib.sha256(content).hexdigest(), len(content))
    return found


def layout_problems(files: dict[str, LocalFile], max_file_bytes: int) -> list[str]:
    """What is wrong with the repository's layout: partition folders `{cluster_type}_tier_{tier}_{n}/<team>/`
    and `plugins/` at the top, nothing else, and no file over the size limit."""
    problems: list[str] = []
    for rel, f in files.items():
        try:
            check_path(rel)
        except BundleRefused as e:
            problems.append(e.detail)
            continue
        parts = rel.split("/")
        top = parts[0]
        if len(parts) == 1:
            problems.append(f"{rel}: files at the top level are not allowed; use a partition folder or plugins/")
        elif top != PLUGINS and not PARTITION_RE.match(top):
            problems.append(
                f"{rel}: '{top}' is not a partition folder ({{cluster_type}}_tier_{{1-3}}_{{n}} with cluster_type "
                "spinner, pii, sox or test, e.g. spinner_tier_1_0) nor plugins/"
            )
        elif top != PLUGINS and len(parts) < 3:
            problems.append(f"{rel}: DAG files go in a team folder, like {top}/<team>/{parts[-1]}")
        if f.size > max_file_bytes:
            problems.append(f"{rel}: {f.size} bytes is over the limit of {max_file_bytes}")
    if files and not any(PARTITION_RE.match(rel.split("/")[0]) for rel in files):
        problems.append("no partition folder (like spinner_tier_1_0/) in the repository")
    return problems


async def _previous(client: Any, location: S3Location, say: Callable[[str], None]) -> BundleManifest | None:
    try:
        found = await get_object(client, location, manifest_key(location.prefix), max_bytes=MAX_MANIFEST_BYTES)
    except BundleRefused as e:
        if e.reason == "missing_object":
            return None
        raise
    assert found is not None
    try:
        return parse_manifest(found[0], prefix=location.prefix, max_file_bytes=sys.maxsize)
    except BundleRefused as e:
        say(f"warning: the published manifest is unusable ({e}); publishing every file again")
        return None


def garbage(
    history: tuple[PushRecord, ...], keep: int, oldest_kept_files: Iterable[str], current: Iterable[str]
) -> set[str]:
    """Objects no retained version needs once the pushes beyond `keep` leave the history.

    Pushes are newest first; each records what it added and dropped against its parent.
    An object of a version now gone that the oldest kept version lacks was dropped by one
    of the pushes from that oldest kept one back to the second-oldest gone one; it is
    still needed only if a later kept push added it back (or, when several pushes leave
    at once, the oldest kept version holds it again: `oldest_kept_files`).
    """
    expired, kept = history[keep:], history[:keep]
    if not expired:
        return set()
    candidates: set[str] = set(kept[-1].dropped)
    for record in expired[:-1]:
        candidates.update(record.dropped)
    needed = set(oldest_kept_files) | set(current)
    for record in kept[:-1]:
        needed.update(record.added)
    return candidates - needed


async def push(
    folder: Path,
    location: S3Location,
    client: Any,
    *,
    keep: int = 10,
    parallel: int = 16,
    say: Callable[[str], None] = lambda _m: None,
    progress: Callable[[int, int], None] = lambda _d, _t: None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> PushResult:
    if keep < 2:
        raise PushError("--keep-versions must be at least 2 (the current version and the one before)")
    files = await asyncio.to_thread(scan, folder)
    problems = layout_problems(files, location.max_file_bytes)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise PushError(f"{folder} is not a valid DAG repository; nothing was pushed:\n  " + "\n  ".join(shown))
    hashes = {rel: f.sha256 for rel, f in files.items()}
    version = bundle_version(hashes)
    previous = await _previous(client, location, say)
    if previous is not None and previous.version == version:
        say(f"version {version} ({len(files)} files) is already published at {location}")
        return PushResult(version, len(files), 0, 0, 0, unchanged=True)
    known = set(previous.hashes().values()) if previous else set()
    new_hashes = set(hashes.values())
    upload = {f.sha256: f for f in files.values() if f.sha256 not in known}  # one upload per distinct content
    removed = [rel for rel in (previous.files if previous else {}) if rel not in files]
    say(
        f"version {version}: {len(files)} files, {len(upload)} to upload, {len(removed)} removed "
        f"(previous: {previous.version if previous else 'none'})"
    )
    done = 0
    slots = asyncio.Semaphore(parallel)

    async def put(sha: str, f: LocalFile) -> None:
        nonlocal done
        body = await asyncio.to_thread(f.path.read_bytes)
        async with slots:
            await _put(client, location, object_key(location.prefix, sha), body)
        done += 1
        progress(done, len(upload))

    async with asyncio.TaskGroup() as tg:
        for sha, f in upload.items():
            tg.create_task(put(sha, f))
    record = PushRecord(version, tuple(sorted(new_hashes - known)), tuple(sorted(known - new_hashes)))
    history = (record, *(previous.history if previous else ()))
    manifest = BundleManifest(
        version=version,
        files={rel: BundleFile(f.sha256, f.size, object_key(location.prefix, f.sha256)) for rel, f in files.items()},
        created_at=clock().isoformat(),
        history=history[:keep],
    )
    body = manifest.to_json()
    await _put(client, location, version_key(location.prefix, version), body)
    deleted = await _collect(client, location, history, keep, new_hashes)
    # Last: the commit point. Until this write readers keep using the previous version, whole.
    await _put(client, location, manifest_key(location.prefix), body)
    return PushResult(version, len(files), len(upload), len(removed), deleted, unchanged=False)


async def _collect(
    client: Any, location: S3Location, history: tuple[PushRecord, ...], keep: int, current: set[str]
) -> int:
    """Deletes the objects and version manifests of pushes beyond `keep` that no retained version needs."""
    expired = history[keep:]
    if not expired:
        return 0
    oldest_kept = history[:keep][-1]
    oldest_files: set[str] = set()
    if len(expired) > 1 and oldest_kept.version:
        # Several pushes leave at once (keep was lowered): what the oldest kept version holds is needed.
        found = await get_object(
            client, location, version_key(location.prefix, oldest_kept.version), max_bytes=MAX_MANIFEST_BYTES
        )
        assert found is not None
        oldest_files = set(
            parse_manifest(found[0], prefix=location.prefix, max_file_bytes=sys.maxsize).hashes().values()
        )
    doomed = garbage(history, keep, oldest_files, current)
    kept_versions = {h.version for h in history[:keep]}
    keys = [object_key(location.prefix, sha) for sha in sorted(doomed)]
    keys += [version_key(location.prefix, h.version) for h in expired if h.version and h.version not in kept_versions]
    for start in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        await _call(client.delete_objects(Bucket=location.bucket, Delete={"Objects": batch, "Quiet": True}), location)
    return len(doomed)


async def _put(client: Any, location: S3Location, key: str, body: bytes) -> None:
    await _call(client.put_object(Bucket=location.bucket, Key=key, Body=body), location)


async def _call(call: Any, location: S3Location) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    try:
        return await call
    except ClientError as e:
        raise BundleUnavailable(f"S3 refused a write to {location}: {e}") from None
    except (BotoCoreError, OSError, TimeoutError) as e:
        raise BundleUnavailable(f"S3 at {location.endpoint_url or 'AWS'} is unreachable: {e}") from None


def _progress_printer(stream: Any) -> Callable[[int, int], None]:
    tty = stream.isatty()
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= (0.1 if tty else 2.0):
            last[0] = now
            end = "\n" if done == total or not tty else ""
            lead = "\r" if tty else ""
            print(f"{lead}uploaded {done}/{total} files", end=end, file=stream, flush=True)

    return show


async def _notify(mqtt_url: str, cluster: str, version: str) -> None:
    from spinner import events
    from spinner.events import make_bus

    bus = make_bus(mqtt_url, cluster)
    try:
        await bus.publish(events.BUNDLE_PUBLISHED, {"version": version})
    finally:
        await bus.aclose()


def dags_push(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from spinner.config import BundleSettings

    given = {
        "dags_bucket": args.bucket, "dags_prefix": args.prefix, "s3_endpoint_url": args.endpoint_url,
        "s3_region": args.region, "max_file_bytes": args.max_file_bytes, "mqtt_url": args.mqtt_url,
    }  # fmt: skip
    try:
        settings = BundleSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as e:
        print(f"error: invalid settings: {e}", file=sys.stderr)
        return 1
    if not settings.dags_bucket:
        print("error: --bucket is required (or SPINNER_DAGS_BUCKET)", file=sys.stderr)
        return 1
    location = settings.s3_location()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    async def go() -> PushResult:
        async with s3_client(location) as client:
            return await push(
                args.dir, location, client, keep=args.keep_versions, say=say, progress=_progress_printer(sys.stderr)
            )

    started = time.perf_counter()
    try:
        result = asyncio.run(go())
    except (PushError, BundleUnavailable, BundleRefused) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not result.unchanged:
        if settings.mqtt_url:
            asyncio.run(_notify(settings.mqtt_url, settings.cluster, result.version))
        say(
            f"published version {result.version} to {location} in {time.perf_counter() - started:.2f}s: "
            f"{result.uploaded} uploaded, {result.removed_files} removed, {result.deleted_objects} objects deleted"
        )
    print(result.version)
    return 0


def register(dags: Any) -> None:
    p = dags.add_parser("push", help="publish a DAG repository folder to S3 (only what changed)")
    p.add_argument("dir", type=Path, help="the repository folder: partition folders and plugins/")
    p.add_argument("--bucket", help="S3 bucket (default $SPINNER_DAGS_BUCKET)")
    p.add_argument("--prefix", help="key prefix in the bucket (default $SPINNER_DAGS_PREFIX or 'dags')")
    p.add_argument("--endpoint-url", help="S3 endpoint, for MinIO or moto (default $SPINNER_S3_ENDPOINT_URL or AWS)")
    p.add_argument("--region", help="S3 region (default $SPINNER_S3_REGION or us-east-1)")
    p.add_argument("--max-file-bytes", type=int, help="refuse files larger than this (default 5 MiB)")
    p.add_argument("--keep-versions", type=int, default=10, help="versions whose files stay fetchable (default 10)")
    p.add_argument("--mqtt-url", help="announce the new version on this broker (default $SPINNER_MQTT_URL)")
    p.set_defaults(handler=dags_push)
