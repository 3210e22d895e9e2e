"""DAG processing for one partition: parse changed files in isolated processes, record the results."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from services.scheduler import queries
from services.scheduler.engine.parsing import Parser, ParseResult
from spinner.db import auth as db_auth
from spinner.podpolicy import PodPolicy
from spinner.sandbox import DagUser
from spinner.snapshots import SnapshotRef

log = logging.getLogger(__name__)

PARTITION_RE = re.compile(r"^(spinner|pii|sox|test)_tier_([1-3])_(\d+)$")


def partition_tier(partition: str) -> int:
    match = PARTITION_RE.match(partition)
    if not match:
        raise ValueError(
            f"partition {partition!r} is not named {{cluster_type}}_tier_{{tier}}_{{n}} "
            "(cluster_type one of spinner, pii, sox, test; tier 1-3)"
        )
    return int(match.group(2))


RETRY_FIRST = 30.0  # seconds before a file whose parse failed that way is parsed again; doubles up to RETRY_MOST
RETRY_MOST = 600.0


@dataclass(frozen=True)
class Plan:
    snapshot: SnapshotRef
    todo: list[str]
    removed: list[str]
    hashes: dict[str, str]
    plugins_hash: str


@dataclass
class FileState:
    content_hash: str
    dag_ids: list[str] = field(default_factory=list)


class DagProcessor:
    """Keeps the partition's DAG rows equal to its folder in the current snapshot."""

    def __init__(
        self,
        partition: str,
        *,
        parse_timeout: float,
        clock: Callable[[], dt.datetime],
        parse_memory_mb: int = 1024,
        parallel: int = 2,
        retry_first: float = RETRY_FIRST,
        dag_user: DagUser | None = None,
        pod_policy: PodPolicy | None = None,
    ) -> None:
        self.partition = partition
        self.tier = partition_tier(partition)
        self._timeout = parse_timeout
        self._memory = parse_memory_mb
        self._clock = clock
        self._files: dict[str, FileState] = {}
        self._plugins_hash = ""
        self._version = ""
        self._parse_slots = asyncio.Semaphore(parallel)
        self._parser = Parser(user=dag_user, pod_policy=pod_policy)
        self._retry_first = retry_first
        self._retries: dict[str, tuple[int, float]] = {}  # rel path -> (attempts, monotonic time due)

    @property
    def version(self) -> str:
        return self._version

    def _scan(self, snapshot: SnapshotRef) -> tuple[dict[str, str], str]:
        folder = snapshot.path / self.partition
        hashes: dict[str, str] = {}
        if folder.is_dir():
            for path in sorted(folder.rglob("*.py")):
                if "__pycache__" in path.parts:
                    continue
                hashes[path.relative_to(snapshot.path).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        plugins = hashlib.sha256()
        plugin_dir = snapshot.path / "plugins"
        if plugin_dir.is_dir():
            for path in sorted(plugin_dir.rglob("*.py")):
                plugins.update(path.relative_to(plugin_dir).as_posix().encode() + b"\0" + path.read_bytes())
        return hashes, plugins.hexdigest()

    async def plan(self, snapshot: SnapshotRef) -> Plan:
        """What changed since the last snapshot this processor finished: files to parse, files gone."""
        hashes, plugins_hash = await asyncio.to_thread(self._scan, snapshot)
        reparse_all = plugins_hash != self._plugins_hash
        todo = [
            rel
            for rel, h in hashes.items()
            if reparse_all or rel not in self._files or self._files[rel].content_hash != h
        ]
        removed = [rel for rel in self._files if rel not in hashes]
        return Plan(snapshot=snapshot, todo=todo, removed=removed, hashes=hashes, plugins_hash=plugins_hash)

    async def parse(self, plan: Plan, rel: str) -> ParseResult:
        async with self._parse_slots:
            result = await self._parser.parse(plan.snapshot.path, plan.snapshot.path / rel, self._timeout, self._memory)
        result.rel_path = rel
        return result

    def recorded(self, plan: Plan, result: ParseResult | None = None) -> None:
        """Remembers what has been written, so it is not parsed again (a transient failure is, later)."""
        if result is None:
            for rel in plan.removed:
                self._files.pop(rel, None)
                self._retries.pop(rel, None)
        elif result.transient:
            attempts = self._retries.get(result.rel_path, (0, 0.0))[0] + 1
            delay = min(self._retry_first * 2 ** (attempts - 1), RETRY_MOST)
            self._retries[result.rel_path] = (attempts, time.monotonic() + delay)
            self._files[result.rel_path] = FileState("")  # differs from any hash: the next plan parses it
        else:
            self._retries.pop(result.rel_path, None)
            self._files[result.rel_path] = FileState(plan.hashes[result.rel_path])

    def retry_due(self) -> bool:
        """A file whose parse failed transiently is due to be parsed again."""
        now = time.monotonic()
        return any(due <= now for _, due in self._retries.values())

    def finished(self, plan: Plan) -> None:
        self._plugins_hash = plan.plugins_hash
        self._version = plan.snapshot.version

    async def aclose(self) -> None:
        """Stops the parsers' fork server (at shutdown)."""
        await self._parser.aclose()

    def forget(self) -> None:
        """Parse everything again next time (after losing and regaining the lease)."""
        self._files.clear()
        self._retries.clear()
        self._plugins_hash = ""
        self._version = ""

    async def record(
        self, session: AsyncSession, results: list[ParseResult], removed: list[str], snapshot: SnapshotRef
    ) -> list[str]:
        """Writes parse results: DAG rows, serialized DAGs, code, import errors, deactivations.

        Returns the ids of DAGs whose serialized form changed (their next run is recomputed).
        """
        now = self._clock()
        version = snapshot.version
        changed: list[str] = []
        acls: dict[str, dict[str, list[str]]] = {}  # of the changed DAGs, synced in a few queries at the end
        for rel in removed:
            await queries.deactivate_file(session, self.partition, rel)
            await queries.clear_import_errors(session, self.partition, rel)
        for res in results:
            await queries.clear_import_errors(session, self.partition, res.rel_path)
            error = res.error or await self._check(session, res)
            if error:
                await queries.add_import_error(session, self.partition, res.rel_path, error, now)
                log.warning("import error in %s: %s", res.rel_path, error.strip().splitlines()[-1])
                continue
            kept = [d["dag_id"] for d in res.dags]
            for data in res.dags:
                if await queries.upsert_dag(session, self.partition, res.rel_path, data, version, now):
                    changed.append(data["dag_id"])
                    acls[data["dag_id"]] = dict(data.get("access_control") or {})
            await queries.deactivate_file(session, self.partition, res.rel_path, keep=kept)
            source = (snapshot.path / res.rel_path).read_text(errors="replace")
            await queries.upsert_code(session, res.rel_path, source, now)
        await db_auth.sync_acl(session, acls)
        await queries.set_bundle_version(session, self.partition, version)
        return changed

    async def _check(self, session: AsyncSession, res: ParseResult) -> str | None:
        """Rules a DAG file must follow beyond importing: tier matches folder, dag_id is unique."""
        problems = []
        seen: set[str] = set()
        for data in res.dags:
            dag_id = data["dag_id"]
            if data.get("tier") != self.tier:
                problems.append(
                    f"DAG '{dag_id}' declares tier {data.get('tier')} but lives in partition "
                    f"{self.partition} (tier {self.tier}); move the file or fix tier="
                )
            if dag_id in seen:
                problems.append(f"DAG id '{dag_id}' is defined twice in {res.rel_path}")
            seen.add(dag_id)
            owner = await queries.dag_owner(session, dag_id)
            if owner is not None and owner != (self.partition, res.rel_path):
                problems.append(
                    f"DAG id '{dag_id}' is already defined in {owner[1]} (partition {owner[0]}); "
                    "DAG ids must be unique across all partitions"
                )
        return "\n".join(problems) or None
