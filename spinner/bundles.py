"""DAG bundles in S3: the layout, the manifest, its validation, and fetching one exact version.

`spinner dags push` writes a bundle, dagsync mirrors the newest one into local snapshots,
and a task runner fetches the exact version its run was scheduled with. Layout under
`s3://<bucket>/<prefix>/`:

    manifest.json             the newest version (written last by a push: the commit point)
    versions/<version>.json   the manifest of every retained version, never changed
    objects/<sha256>          file contents addressed by their hash: immutable, shared by versions

Objects are never overwritten, so a reader holding any retained manifest can always
fetch a consistent version while a push is under way. A bundle's version is a hash of
its file list (paths and content hashes): the same files always make the same version,
whichever source (S3 or a local folder) they come from.

Everything read from S3 is untrusted: a manifest that does not parse, a path that is
absolute or climbs out (`..`), a key outside the prefix, a file over the size limit or
content whose hash does not match is refused with a `BundleRefused` naming the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024
PLUGINS = "plugins"
PARTITION_RE = re.compile(r"^(spinner|pii|sox|test)_tier_([1-3])_(0|[1-9][0-9]*)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_VERSION_RE = re.compile(r"^[0-9a-f]{16,64}$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")

# Why a bundle (or a file of it) was refused; the `reason` attribute of the refusal metric.
UNSAFE_PATH = "unsafe_path"
OUTSIDE_PREFIX = "outside_prefix"
TOO_LARGE = "too_large"
BAD_MANIFEST = "bad_manifest"
HASH_MISMATCH = "hash_mismatch"
MISSING_OBJECT = "missing_object"


class BundleRefused(Exception):
    """Bad input in the bundle itself: retrying will not help until someone publishes again."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BundleUnavailable(Exception):
    """S3 could not be asked (network, timeout, 5xx, credentials): try again later."""


def bundle_version(hashes: Mapping[str, str]) -> str:
    """The version of a file list: a hash of every (path, content hash) pair, in path order."""
    digest = hashlib.sha256()
    for rel, file_hash in sorted(hashes.items()):
        digest.update(f"{rel}\0{file_hash}\n".encode())
    return digest.hexdigest()[:16]


def normalize_prefix(prefix: str) -> str:
    return prefix.strip("/")


def _join(prefix: str, rest: str) -> str:
    prefix = normalize_prefix(prefix)
    return f"{prefix}/{rest}" if prefix else rest


def manifest_key(prefix: str) -> str:
    return _join(prefix, MANIFEST)


def version_key(prefix: str, version: str) -> str:
    return _join(prefix, f"versions/{version}.json")


def object_key(prefix: str, sha256: str) -> str:
    return _join(prefix, f"objects/{sha256}")


def check_path(rel: str) -> None:
    """A file's path inside a bundle must stay inside it: relative, no `..`, no empty or odd parts."""
    if not rel or rel[0] == "/" or "\\" in rel or "\0" in rel or _DRIVE_RE.match(rel):
        raise BundleRefused(UNSAFE_PATH, f"path {rel!r} is absolute or malformed")
    parts = rel.split("/")
    if "" in parts or "." in parts or ".." in parts:
        raise BundleRefused(UNSAFE_PATH, f"path {rel!r} has an empty, '.' or '..' part")


def check_key(key: str, prefix: str, objects: str = "") -> None:
    """An object key must be in the bundle's object folder: nothing else of the bucket is read."""
    objects = objects or object_key(prefix, "")
    if ".." in key.split("/") or "//" in key or not key.startswith(objects) or key == objects:
        raise BundleRefused(OUTSIDE_PREFIX, f"key {key!r} is outside {objects}")


@dataclass(frozen=True)
class BundleFile:
    sha256: str
    size: int
    key: str


@dataclass(frozen=True)
class PushRecord:
    """One push, for the retention of objects: hashes it added and dropped relative to its parent."""

    version: str
    added: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class BundleManifest:
    version: str
    files: dict[str, BundleFile]
    created_at: str = ""
    # Newest first, this version included: the versions whose objects are still kept.
    history: tuple[PushRecord, ...] = field(default=())

    def hashes(self) -> dict[str, str]:
        return {rel: f.sha256 for rel, f in self.files.items()}

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "version": self.version,
                "created_at": self.created_at,
                "files": {
                    rel: {"sha256": f.sha256, "size": f.size, "key": f.key} for rel, f in sorted(self.files.items())
                },
                "history": [
                    {"version": h.version, "added": list(h.added), "dropped": list(h.dropped)} for h in self.history
                ],
            },
            separators=(",", ":"),
        ).encode()


def _field(data: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleRefused(BAD_MANIFEST, f"{where}: '{name}' is missing or not a {kind.__name__}")
    return value


def parse_manifest(raw: bytes, *, prefix: str, max_file_bytes: int) -> BundleManifest:
    """Parses and validates a manifest read from S3; every problem is a `BundleRefused`."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleRefused(BAD_MANIFEST, f"manifest is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise BundleRefused(BAD_MANIFEST, "manifest is not a JSON object")
    if data.get("format") != FORMAT:
        raise BundleRefused(BAD_MANIFEST, f"manifest format {data.get('format')!r} is not {FORMAT}")
    version = _field(data, "version", str, "manifest")
    entries = _field(data, "files", dict, "manifest")
    files: dict[str, BundleFile] = {}
    objects = object_key(prefix, "")
    for rel, entry in entries.items():
        check_path(rel)
        if not isinstance(entry, dict):
            raise BundleRefused(BAD_MANIFEST, f"entry of {rel!r} is not an object")
        sha = _field(entry, "sha256", str, rel)
        size = _field(entry, "size", int, rel)
        key = _field(entry, "key", str, rel)
        if not _SHA256_RE.match(sha):
            raise BundleRefused(BAD_MANIFEST, f"{rel}: sha256 {sha!r} is not a hex sha256")
        if size < 0 or size > max_file_bytes:
            raise BundleRefused(TOO_LARGE, f"{rel} is {size} bytes; the limit is {max_file_bytes}")
        check_key(key, prefix, objects)
        files[rel] = BundleFile(sha, size, key)
    history: list[PushRecord] = []
    raw_history = data.get("history", [])
    if not isinstance(raw_history, list):
        raise BundleRefused(BAD_MANIFEST, "'history' is not a list")
    for h in raw_history:
        if not isinstance(h, dict):
            raise BundleRefused(BAD_MANIFEST, "a 'history' entry is not an object")
        added, dropped = h.get("added", []), h.get("dropped", [])
        if not isinstance(added, list) or not isinstance(dropped, list):
            raise BundleRefused(BAD_MANIFEST, "a 'history' entry's added/dropped is not a list")
        history.append(PushRecord(str(h.get("version", "")), tuple(map(str, added)), tuple(map(str, dropped))))
    computed = bundle_version({rel: f.sha256 for rel, f in files.items()})
    if version != computed:
        raise BundleRefused(HASH_MISMATCH, f"manifest says version {version} but its file list hashes to {computed}")
    return BundleManifest(version, files, str(data.get("created_at", "")), tuple(history))


def verify(rel: str, content: bytes, expected: BundleFile) -> None:
    if len(content) != expected.size or hashlib.sha256(content).hexdigest() != expected.sha256:
        raise BundleRefused(
            HASH_MISMATCH,
            f"{rel}: {len(content)} bytes with sha256 {hashlib.sha256(content).hexdigest()[:12]}..., "
            f"the manifest says {expected.size} bytes with {expected.sha256[:12]}...",
        )


# --- S3 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint_url: str = ""
    region: str = "us-east-1"
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{normalize_prefix(self.prefix)}"


_loader: Any = None  # botocore's data loader, kept: it caches the parsed service models (JSON) of the process


def _boto_session() -> Any:
    """A new aioboto3 session over the process's botocore data loader. Parsing S3's models costs about 0.1 s of
    CPU per client otherwise; a task runner, forked from a warm fork server (`warm_s3`), inherits them parsed.
    Only the loader is shared, never a session: credentials that refresh hold locks bound to one event loop."""
    global _loader
    import aioboto3
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    core = get_session()
    if _loader is None:
        _loader = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _loader)
    return aioboto3.Session(botocore_session=core)


def warm_s3() -> None:
    """Imports the S3 client and parses its models now, in a fork server, so its children start without that cost
    (most of a task runner's CPU when it archives its log: spinner/runner/logstream.py)."""

    async def make() -> None:
        async with s3_client(S3Location(bucket="warm", prefix="", endpoint_url="http://127.0.0.1:9")):
            pass  # a client made, no request sent

    asyncio.run(make())


@asynccontextmanager
async def s3_client(location: S3Location, *, read_timeout: float = 10.0) -> AsyncIterator[Any]:
    """An aioboto3 S3 client for the location: short timeouts and one retry, callers retry on their own clock."""
    from botocore.config import Config  # type: ignore[import-untyped]

    config = Config(
        connect_timeout=min(read_timeout, 3.0),
        read_timeout=read_timeout,
        retries={"max_attempts": 2, "mode": "standard"},
        max_pool_connections=32,
    )
    session = _boto_session()
    async with session.client(
        "s3", endpoint_url=location.endpoint_url or None, region_name=location.region, config=config
    ) as client:
        yield client


def _error_code(e: Exception) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


async def get_object(
    client: Any, location: S3Location, key: str, *, max_bytes: int, if_none_match: str = ""
) -> tuple[bytes, str] | None:
    """(content, etag) of one object, or None when `if_none_match` still matches (HTTP 304).

    A missing object or one over `max_bytes` is refused; anything else that fails is
    `BundleUnavailable`.
    """
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    kwargs: dict[str, Any] = {"Bucket": location.bucket, "Key": key}
    if if_none_match:
        kwargs["IfNoneMatch"] = if_none_match
    try:
        response = await client.get_object(**kwargs)
        length = int(response.get("ContentLength", 0))
        if length > max_bytes:
            response["Body"].close()
            raise BundleRefused(TOO_LARGE, f"{key} is {length} bytes; the limit is {max_bytes}")
        async with response["Body"] as body:
            content: bytes = await body.read()
        return content, str(response.get("ETag", ""))
    except ClientError as e:
        code = _error_code(e)
        if code in ("304", "NotModified"):
            return None
        if code in ("NoSuchKey", "404"):
            raise BundleRefused(MISSING_OBJECT, f"s3://{location.bucket}/{key} does not exist") from None
        raise BundleUnavailable(f"S3 answered {code or e} for s3://{location.bucket}/{key}") from None
    except (BotoCoreError, OSError, TimeoutError) as e:
        raise BundleUnavailable(f"S3 at {location.endpoint_url or 'AWS'} is unreachable: {e}") from None


async def bounded_map(
    call: Callable[[str], Awaitable[tuple[str, bytes]]], items: Iterable[str], parallel: int
) -> dict[str, bytes]:
    """Runs `call` on every item, at most `parallel` at once; the first failure cancels the rest and is raised."""
    slots = asyncio.Semaphore(parallel)

    async def one(item: str) -> tuple[str, bytes]:
        async with slots:
            return await call(item)

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(item)) for item in items]
    except ExceptionGroup as group:
        first = group.exceptions[0]
        # Bad input says more than the cancellations or outages it caused.
        refused = [e for e in group.exceptions if isinstance(e, BundleRefused)]
        raise (refused[0] if refused else first) from None
    return dict(t.result() for t in tasks)


# --- fetching one version (task runners) -------------------------------------------------


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def _install_tree(dest: Path, files: Mapping[str, bytes]) -> None:
    """Writes the files beside `dest`, then renames the folder into place: whole or not at all."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dest.parent))
    try:
        for rel, content in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        os.chmod(staging, 0o755)
        os.rename(staging, dest)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not dest.is_dir():  # another runner on this host may have won the race: fine
            raise


async def fetch_version(
    client: Any,
    location: S3Location,
    version: str,
    dest: Path,
    *,
    include: Callable[[str], bool] | None = None,
    parallel: int = 16,
) -> tuple[Path, int]:
    """Downloads one exact version (or the files `include` selects) into `dest`, verifying every hash.

    `dest` appears whole or not at all (written beside it, then renamed). Returns (dest,
    number of files). An existing `dest` is trusted: it was verified when it was written.
    """
    if await asyncio.to_thread(dest.is_dir):
        return dest, await asyncio.to_thread(_count_files, dest)
    if not _VERSION_RE.match(version):
        raise BundleRefused(BAD_MANIFEST, f"bundle version {version!r} is malformed")
    found = await get_object(client, location, version_key(location.prefix, version), max_bytes=256 * 1024 * 1024)
    assert found is not None  # no If-None-Match: never a 304
    manifest = parse_manifest(found[0], prefix=location.prefix, max_file_bytes=location.max_file_bytes)
    if manifest.version != version:
        raise BundleRefused(HASH_MISMATCH, f"versions/{version}.json holds version {manifest.version}")
    wanted = {rel: f for rel, f in manifest.files.items() if include is None or include(rel)}

    async def one(rel: str) -> tuple[str, bytes]:
        entry = wanted[rel]
        got = await get_object(client, location, entry.key, max_bytes=location.max_file_bytes)
        assert got is not None
        verify(rel, got[0], entry)
        return rel, got[0]

    contents = await bounded_map(one, wanted, parallel)
    await asyncio.to_thread(_install_tree, dest, contents)
    return dest, len(contents)


def ensure_snapshot(snapshot: Path, fileloc: str, say: Callable[[str], None]) -> Path:
    """The task runner's hook: the snapshot when it is on this host, else the version fetched from S3.

    The version is the snapshot folder's name. Only the DAG file's partition and plugins/ are
    fetched, into `SPINNER_BUNDLE_CACHE` (default: `bundles/` beside the snapshot root), and
    every file's hash is checked. Without `SPINNER_DAGS_BUCKET` the snapshot is returned as is.
    """
    from spinner.config import BundleSettings

    if snapshot.is_dir():
        return snapshot
    settings = BundleSettings()
    if not settings.dags_bucket:
        return snapshot
    location = settings.s3_location()
    version = snapshot.name
    partition = fileloc.split("/", 1)[0]
    check_path(fileloc)
    cache = settings.bundle_cache or snapshot.parent.parent / "bundles"
    dest = cache / f"{version}-{partition}"

    def include(rel: str) -> bool:
        return rel.startswith((f"{partition}/", f"{PLUGINS}/"))

    async def go() -> tuple[Path, int]:
        async with s3_client(location) as client:
            return await fetch_version(client, location, version, dest, include=include)

    started = dt.datetime.now(dt.UTC)
    try:
        path, count = asyncio.run(go())
    except (BundleRefused, BundleUnavailable) as e:
        # An OSError, like any other missing snapshot: the runner fails its readiness check with this reason.
        raise FileNotFoundError(f"DAG bundle {version} could not be fetched from {location}: {e}") from None
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    say(f"DAG bundle {version} ({partition} and plugins, {count} files) from {location}, verified, {seconds:.2f}s")
    return path
