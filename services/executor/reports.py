"""Applies the executor's task-try reports in batches: one transaction for every report that waits.

Schedulers' Submits (a read: is the try still queued, is the lease current?), runners' Start
and Finish, and process ends arrive concurrently, hundreds a second in a burst. Each report
becomes an item on a queue; one writer takes every item waiting, locks their rows in key
order (SELECT ... FOR UPDATE), decides each against the row as it is now, and writes all the
moves with a few statements: the guarded UPDATEs as one statement per 200 tries
(spinner/db/bulk.py), one multi-row INSERT of history rows. Decisions are the same as one
report at a time: a try moves only if it is still the try the report names, in a state the
report expects (docs/adr/0001); the guard stays in every UPDATE as well.

While one batch is in the database the next one gathers, so a quiet executor answers a lone
report at once, and a busy one writes in batches without waiting on a timer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, insert, or_, select, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor import skips
from services.executor.backends.base import TryKey
from spinner.db import xcom as db_xcom
from spinner.db.bulk import BulkUpdate
from spinner.db.models import DagRun, PartitionLease, TaskInstance, TaskInstanceHistory

log = logging.getLogger(__name__)

# The states a runner report leaves a try in (up_for_reschedule: a sensor between pokes, its process ended).
ENDED = ("success", "failed", "up_for_retry", "skipped", "upstream_failed", "up_for_reschedule")
MAX_BATCH = 500
DEADLOCK_RETRIES = 5

_TI = cast(Table, TaskInstance.__table__)
_TIH = cast(Table, TaskInstanceHistory.__table__)


class ReportRefused(Exception):
    """The report does not apply to the try as it is now (the executor maps it to NotQueued/StaleLease)."""


class StaleLeaseRefused(ReportRefused):
    pass


@dataclass
class TryRow:
    """The columns of a try that reports are decided on."""

    try_number: int
    state: str | None
    max_tries: int
    queued_at: dt.datetime | None
    start_date: dt.datetime | None
    hostname: str
    reschedule_count: int = 0
    first_poke_at: dt.datetime | None = None
    pid: int | None = None

    def run_by_another(self, runner: Runner | None) -> bool:
        """True when the try is running under a runner other than `runner` (None: not checked)."""
        if runner is None or self.state != "running" or not self.hostname or self.pid is None:
            return False
        return (self.hostname, self.pid) != runner


Runner = tuple[str, int]  # (hostname, pid) of a runner process, as its Start names it


@dataclass(frozen=True)
class RunContext:
    logical_date: str
    data_interval_start: str
    data_interval_end: str
    conf_json: str
    run_type: str


@dataclass(frozen=True)
class CheckResult:
    state: str | None  # "queued" or "running"
    reschedule_count: int = 0  # the poke process to start (docs/adr/0006-sensor-reschedule.md)
    first_poke_at: dt.datetime | None = None


@dataclass(frozen=True)
class StartResult:
    moved: bool
    queued_at: dt.datetime | None
    context: RunContext


@dataclass(frozen=True)
class EndResult:
    state: str
    moved: bool


@dataclass(frozen=True)
class Outcome:
    success: bool = False
    skipped: bool = False
    no_retry: bool = False
    reschedule_at: dt.datetime | None = None  # a sensor between pokes: run this try again then


@dataclass
class _Item:
    key: TryKey
    future: asyncio.Future[Any] = field(repr=False)


@dataclass
class _Check(_Item):
    partition: str = ""
    lease_epoch: int = 0


@dataclass
class _Start(_Item):
    hostname: str = ""
    pid: int = 0
    executor: str = ""


@dataclass
class _End(_Item):
    outcome: Outcome = field(default_factory=Outcome)
    error: str = ""
    expected: tuple[str, ...] = ("running",)
    skip_task_ids: tuple[str, ...] = ()  # skipped with a success, same transaction (services/executor/skips.py)
    # A process's end names its poke (TryKey.reschedule) and applies only to that poke; None for a
    # runner's report, which the try's token authorizes whichever poke is current.
    poke: int | None = None
    # The runner reporting (or whose process ended): a try running under another runner is not its
    # to end. None: not checked (an older runner, a pod).
    runner: Runner | None = None


RunContextOf = Callable[[DagRun], RunContext]


def end_state(row: TryRow, outcome: Outcome) -> str:
    if outcome.success:
        return "success"
    if outcome.skipped:
        return "skipped"
    if outcome.reschedule_at is not None:
        return "up_for_reschedule"
    if not outcome.no_retry and row.try_number <= row.max_tries:
        return "up_for_retry"
    return "failed"


class ReportWriter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], dt.datetime],
        run_context: RunContextOf,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._run_context = run_context
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        # A run's logical date, interval, conf and type never change: one read per run, not per try.
        self._contexts: dict[tuple[str, str], RunContext] = {}
        self.batches = 0
        self.items = 0

    # --- the reports -------------------------------------------------------------------

    async def check_queued(self, key: TryKey, partition: str, lease_epoch: int) -> CheckResult:
        result: CheckResult = await self._put(_Check(key, self._future(), partition, lease_epoch))
        return result

    async def start(self, key: TryKey, hostname: str, pid: int, executor: str) -> StartResult:
        result: StartResult = await self._put(_Start(key, self._future(), hostname, pid, executor))
        return result

    async def end(
        self,
        key: TryKey,
        outcome: Outcome,
        error: str,
        expected: tuple[str, ...],
        skip_task_ids: tuple[str, ...] = (),
        poke: int | None = None,
        runner: Runner | None = None,
    ) -> EndResult:
        item = _End(key, self._future(), outcome, error, expected, skip_task_ids, poke, runner)
        result: EndResult = await self._put(item)
        return result

    # --- the writer --------------------------------------------------------------------

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _put(self, item: _Item) -> Any:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="executor-report-writer")
        self._queue.put_nowait(item)
        return await item.future

    async def aclose(self) -> None:
        """Stops the writer between batches (never inside a transaction); waiting reports get an error."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self._idle.wait(), 30)
            except TimeoutError:
                log.warning("a report batch did not finish in 30 s; stopping it")
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(ReportRefused("the executor is shutting down"))

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [i for i in batch if not i.future.done()]  # a caller that gave up
            if not live:
                continue
            self._idle.clear()
            try:
                results = await self._apply_with_retry(live)
            except Exception as e:  # the database is away: every waiting report gets the error
                log.warning("could not apply %d reports: %s", len(live), e)
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(e)
                continue
            finally:
                self._idle.set()
            self.batches += 1
            self.items += len(live)
            for item, result in zip(live, results, strict=True):
                if item.future.done():
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)

    async def _apply_with_retry(self, batch: list[_Item]) -> list[Any]:
        for attempt in range(DEADLOCK_RETRIES):
            try:
                async with self._sessions() as session, session.begin():
                    return await self._apply(session, batch)
            except DBAPIError as e:
                # MariaDB picks a victim when two writers lock rows in different orders; try again.
                if attempt + 1 < DEADLOCK_RETRIES and _is_retryable(e):
                    await asyncio.sleep(0.01 * (attempt + 1))
                    continue
                raise
        raise AssertionError("unreachable")

    async def _apply(self, session: AsyncSession, batch: list[_Item]) -> list[Any]:
        now = self._clock()
        rows = await _lock_rows(session, sorted({_instance(i.key) for i in batch}))
        epochs = await _lease_epochs(session, {i.partition for i in batch if isinstance(i, _Check)})
        await self._load_contexts(session, {(i.key.dag_id, i.key.run_id) for i in batch if isinstance(i, _Start)})
        starts: list[dict[str, Any]] = []
        ends: list[dict[str, Any]] = []
        reschedules: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        results: list[Any] = []
        for item in batch:
            row = rows.get(_instance(item.key))
            try:
                if isinstance(item, _Check):
                    results.append(_check(item, row, epochs))
                elif isinstance(item, _Start):
                    results.append(self._start(item, row, now, starts))
                elif isinstance(item, _End):
                    results.append(ended := _end(item, row, now, ends, history, reschedules))
                    if ended.moved and ended.state == "success" and item.skip_task_ids:
                        skipped.extend(skips.rows(item.key, item.skip_task_ids, now))
            except ReportRefused as e:
                results.append(e)
        if starts:
            await _START_UPDATE.execute(session, starts)
            # As Airflow: a new try starts without the XComs of the one before (in the same transaction),
            # of its own task instance only (a mapped task's other instances keep theirs).
            # A first try has no one before it (a clear deletes XComs itself): no statement on the hot path.
            again = [(s["dag_id"], s["run_id"], s["task_id"], s["map_index"]) for s in starts if s["try_number"] > 1]
            if again:
                await db_xcom.clear_instances(session, again)
        if ends:
            await _END_UPDATE.execute(session, ends)
        if reschedules:
            await _RESCHEDULE_UPDATE.execute(session, reschedules)
        if history:
            await session.execute(insert(_TIH), history)
        await skips.apply(session, skipped)
        return results

    def _start(self, item: _Start, row: TryRow | None, now: dt.datetime, starts: list[dict[str, Any]]) -> StartResult:
        key = item.key
        if row is None or row.try_number != key.try_number or row.state not in ("queued", "running"):
            raise ReportRefused(f"{key.describe()} may not start now")
        context = self._contexts.get((key.dag_id, key.run_id))
        if context is None:
            raise ReportRefused(f"run {key.run_id} of {key.dag_id} is gone")
        if row.state == "running":
            if row.run_by_another((item.hostname, item.pid)):
                # A second runner of the same try (launched again after an executor restart): not to run it.
                raise ReportRefused(f"{key.describe()} already runs as pid {row.pid} on {row.hostname}")
            return StartResult(False, row.queued_at, context)  # the same runner's Start again: same answer
        starts.append(
            _key_params(key)
            | {"start_date": now, "last_heartbeat_at": now, "hostname": item.hostname,
               "pid": item.pid, "executor": item.executor}
        )  # fmt: skip
        row.state, row.start_date, row.hostname, row.pid = "running", now, item.hostname, item.pid
        return StartResult(True, row.queued_at, context)

    async def _load_contexts(self, session: AsyncSession, runs: set[tuple[str, str]]) -> None:
        missing = sorted(r for r in runs if r not in self._contexts)
        if not missing:
            return
        if len(self._contexts) > 10_000:
            self._contexts.clear()
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            q = select(DagRun).where(tuple_(DagRun.dag_id, DagRun.run_id).in_(chunk))
            for run in (await session.execute(q)).scalars():
                self._contexts[(run.dag_id, run.run_id)] = self._run_context(run)


def _check(item: _Check, row: TryRow | None, epochs: dict[str, int]) -> CheckResult:
    key = item.key
    epoch = epochs.get(item.partition)
    if epoch is not None and item.lease_epoch < epoch:
        raise StaleLeaseRefused(f"lease epoch {item.lease_epoch} of {item.partition} is stale (now {epoch})")
    if row is None or row.try_number != key.try_number or row.state not in ("queued", "running"):
        state = None if row is None else (row.state, row.try_number)
        raise ReportRefused(f"{key.describe()} is not queued: {state}")
    return CheckResult(row.state, row.reschedule_count, row.first_poke_at)


def _end(
    item: _End,
    row: TryRow | None,
    now: dt.datetime,
    ends: list[dict[str, Any]],
    history: list[dict[str, Any]],
    reschedules: list[dict[str, Any]],
) -> EndResult:
    key = item.key
    if row is None or row.try_number != key.try_number:
        raise ReportRefused(f"{key.describe()} is not current")
    if item.poke is not None and item.poke != row.reschedule_count:
        # The end of an earlier poke's process, seen after the try was rescheduled: not this poke's.
        raise ReportRefused(f"poke {item.poke} of {key.describe()} is not current")
    if row.run_by_another(item.runner):
        raise ReportRefused(f"{key.describe()} runs as pid {row.pid} on {row.hostname}, not as this runner")
    if row.state in ENDED:
        return EndResult(row.state or "", False)  # reported twice (a retry of Finish): same answer
    if row.state not in item.expected:
        return EndResult(row.state or "", False)
    state = end_state(row, item.outcome)
    start = row.start_date or now
    if state == "up_for_reschedule":
        if row.state != "running":
            raise ReportRefused(f"{key.describe()} may reschedule only while running")
        # Not an end of the try: no history row, try_number stays. end_date tells schedulers it changed.
        reschedules.append(
            _key_params(key) | {"end_date": now, "reschedule_at": item.outcome.reschedule_at,
                                "reschedule_count": row.reschedule_count + 1,
                                "first_poke_at": row.first_poke_at or start}
        )  # fmt: skip
        row.state, row.reschedule_count = state, row.reschedule_count + 1
        return EndResult(state, True)
    start = row.first_poke_at or start  # a rescheduled sensor's try began at its first poke
    duration = (now - start).total_seconds()
    error = item.error[:10000]
    ends.append(
        _key_params(key) | {"state": state, "end_date": now, "start_date": start,
                            "duration": duration, "error": error}
    )  # fmt: skip
    history.append(
        {"dag_id": key.dag_id, "run_id": key.run_id, "task_id": key.task_id, "map_index": key.map_index,
         "try_number": key.try_number, "state": state, "start_date": start, "end_date": now, "duration": duration,
         "hostname": row.hostname,
         "error": error}
    )  # fmt: skip
    row.state = state
    return EndResult(state, True)


def _key_params(key: TryKey) -> dict[str, Any]:
    return {"dag_id": key.dag_id, "run_id": key.run_id, "task_id": key.task_id, "map_index": key.map_index,
            "try_number": key.try_number}  # fmt: skip


Instance = tuple[str, str, str, int]  # (dag_id, run_id, task_id, map_index): one task instance's row


def _instance(key: TryKey) -> Instance:
    return (key.dag_id, key.run_id, key.task_id, key.map_index)


_KEYS = ["dag_id", "run_id", "task_id", "map_index", "try_number"]

_START_UPDATE = BulkUpdate(
    _TI,
    keys=_KEYS,
    values=["start_date", "last_heartbeat_at", "hostname", "pid", "executor"],
    constants={"state": "running"},
    guard=_TI.c.state == "queued",
)

_RESCHEDULE_UPDATE = BulkUpdate(
    _TI,
    keys=_KEYS,
    values=["end_date", "reschedule_at", "reschedule_count", "first_poke_at"],
    constants={"state": "up_for_reschedule", "error": ""},
    guard=_TI.c.state == "running",
)

_END_UPDATE = BulkUpdate(
    _TI,
    keys=_KEYS,
    values=["state", "end_date", "start_date", "duration", "error"],
    # The exact states the report expects were checked on the locked row; the guard keeps ended tries ended.
    guard=or_(_TI.c.state == "queued", _TI.c.state == "running"),
)


async def _lock_rows(session: AsyncSession, keys: Sequence[Instance]) -> dict[Instance, TryRow]:
    """The task instances' rows, locked in primary key order (map_index included: a report on one
    instance of a mapped task never waits on, or decides with, another instance's row)."""
    out: dict[Instance, TryRow] = {}
    c = _TI.c
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        q = (
            select(c.dag_id, c.run_id, c.task_id, c.map_index, c.try_number, c.state, c.max_tries, c.queued_at,
                   c.start_date, c.hostname, c.reschedule_count, c.first_poke_at, c.pid)
            .where(tuple_(c.dag_id, c.run_id, c.task_id, c.map_index).in_(chunk))
            .order_by(c.dag_id, c.run_id, c.task_id, c.map_index)
            .with_for_update()
        )  # fmt: skip
        for r in (await session.execute(q)).all():
            out[(r[0], r[1], r[2], int(r[3]))] = TryRow(
                r[4], r[5], r[6], r[7], r[8], r[9] or "", int(r[10] or 0), r[11], r[12]
            )
    return out


async def _lease_epochs(session: AsyncSession, partitions: set[str]) -> dict[str, int]:
    if not partitions:
        return {}
    q = select(PartitionLease.partition, PartitionLease.epoch).where(PartitionLease.partition.in_(sorted(partitions)))
    return {r[0]: int(r[1]) for r in (await session.execute(q)).all()}


def _is_retryable(e: DBAPIError) -> bool:
    code = e.orig.args[0] if e.orig is not None and getattr(e.orig, "args", None) else None
    return code in (1213, 1205) or "database is locked" in str(e)
