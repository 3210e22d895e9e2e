"""DAG callbacks and deadlines, the scheduler's part: record that one is due, then hand it to the executor.

The scheduler never runs DAG code. When a pass ends a run whose DAG declares on_success_callback /
on_failure_callback, it inserts a dag_callback row in the same fenced transaction that ends the run,
so a callback is neither lost (the end and the row commit together) nor recorded twice (a run
ends once per pass that ends it). A run whose deadline passed before it ended gets one `deadline`
row the same way (the pass checks for an existing row first, in its transaction). After the pass
commits, pending rows are handed to the executor (RunCallback), which launches each exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db import callbacks as queries
from spinner.db.models import DagCallback, DagRun

if TYPE_CHECKING:
    from services.scheduler.engine.scheduling import CachedDag

log = logging.getLogger(__name__)

RESUBMIT_AFTER = 15.0  # seconds before a pending callback is handed over again
READ_EVERY = 0.5  # seconds between reads of the pending callbacks (a busy loop passes many times a second)


def run_end_callbacks(
    run: DagRun, cached: CachedDag | None, partition: str, now: dt.datetime, reason: str
) -> list[Any]:
    """The rows to add with the run's end: its DAG's success or failure callback, if declared."""
    if cached is None or run.state not in ("success", "failed"):
        return []
    kind = "on_success_callback" if run.state == "success" else "on_failure_callback"
    if not cached.dag.callbacks.get(kind):
        return []
    return [
        queries.new(
            dag_id=run.dag_id, run_id=run.run_id, partition=partition, kind=kind,
            bundle_version=run.bundle_version, fileloc=cached.fileloc, details={"reason": reason}, now=now,
        )
    ]  # fmt: skip


@dataclass(frozen=True)
class DeadlineDefaults:
    """Tier defaults for DAGs that declare no deadline (SchedulerSettings deadline_*); 0 seconds: none."""

    seconds_by_tier: dict[int, float]
    reference: str = "queued_at"
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Rule:
    after: dt.timedelta
    reference: str
    declared: bool


def _rule(cached: CachedDag, defaults: DeadlineDefaults) -> _Rule | None:
    declared = cached.dag.callbacks.get("deadline")
    if declared:
        return _Rule(dt.timedelta(seconds=float(declared["after"])), str(declared["reference"]), True)
    seconds = defaults.seconds_by_tier.get(int(cached.dag.tier), 0.0)
    if seconds > 0:
        return _Rule(dt.timedelta(seconds=seconds), defaults.reference, False)
    return None


class RunTimes(Protocol):
    """What a deadline is judged on: a whole run, or the few columns of one a pass reads."""

    @property
    def dag_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def data_interval_end(self) -> dt.datetime | None: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def bundle_version(self) -> str: ...


def deadline_of(run: RunTimes, rule: _Rule) -> dt.datetime | None:
    ref = run.data_interval_end if rule.reference == "logical_date" else run.created_at
    return ref + rule.after if ref is not None else None


class DeadlineWatch:
    """Finds active runs past their deadline and records one `deadline` callback for each."""

    def __init__(self, partition: str, defaults: DeadlineDefaults | None = None) -> None:
        self.partition = partition
        self._defaults = defaults or DeadlineDefaults({})
        self._recorded: set[tuple[str, str]] = set()  # runs read back with their deadline row

    async def check(
        self, session: AsyncSession, runs: Sequence[RunTimes], dags: dict[str, CachedDag], now: dt.datetime
    ) -> int:
        """Records the deadlines missed by now; returns how many it recorded."""
        missed: list[tuple[RunTimes, CachedDag, _Rule, dt.datetime]] = []
        for run in runs:
            cached = dags.get(run.dag_id)
            if cached is None or (run.dag_id, run.run_id) in self._recorded:
                continue
            rule = _rule(cached, self._defaults)
            due = deadline_of(run, rule) if rule else None
            if rule is not None and due is not None and now >= due:
                missed.append((run, cached, rule, due))
        if not missed:
            return 0
        keys = [(r.dag_id, r.run_id) for r, _, _, _ in missed]
        existing = await queries.runs_with_kind(session, keys, "deadline")
        self._recorded |= existing
        if len(self._recorded) > 100_000:
            self._recorded = set(existing)
        added = 0
        for run, cached, rule, due in missed:
            if (run.dag_id, run.run_id) in existing:
                continue
            details = {
                "deadline_at": due.isoformat(), "missed_at": now.isoformat(), "reference": rule.reference,
                "after": rule.after.total_seconds(), "declared": rule.declared,
                "notify": [] if rule.declared else list(self._defaults.notify),
                "reason": "deadline missed",
            }  # fmt: skip
            session.add(
                queries.new(
                    dag_id=run.dag_id, run_id=run.run_id, partition=self.partition, kind="deadline",
                    bundle_version=run.bundle_version, fileloc=cached.fileloc, details=details, now=now,
                )
            )  # fmt: skip
            log.info("run %s of %s missed its deadline of %s", run.run_id, run.dag_id, due.isoformat())
            added += 1
        return added


class CallbackClient(Protocol):
    """Hands a recorded callback to the executor (ExecutorService.RunCallback)."""

    async def run_callback(self, callback_id: int, partition: str, epoch: int) -> bool: ...


class CallbackDispatcher:
    """After each pass: pending callbacks of the partition go to the executor, each at most every 15 s."""

    def __init__(self, partition: str, client: CallbackClient, *, clock: Callable[[], float] = time.monotonic):
        self.partition = partition
        self._client = client
        self._clock = clock
        self._handed: dict[int, float] = {}  # callback id -> when it was last handed over
        self._last_read: float | None = None

    async def due(self, session: AsyncSession) -> list[DagCallback]:
        now = self._clock()
        if self._last_read is not None and now - self._last_read < READ_EVERY:
            return []
        self._last_read = now
        rows = await queries.pending(session, self.partition)
        ids = {r.id for r in rows}
        self._handed = {i: t for i, t in self._handed.items() if i in ids}
        return [r for r in rows if now - self._handed.get(r.id, -RESUBMIT_AFTER) >= RESUBMIT_AFTER]

    async def hand_over(self, rows: Sequence[DagCallback], epoch: int) -> None:
        """One RunCallback per row; a failure leaves the row pending for the next try."""
        for row in rows:
            self._handed[row.id] = self._clock()
            try:
                launched = await self._client.run_callback(row.id, self.partition, epoch)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("could not hand callback %d (%s of %s %s) to the executor: %s",
                            row.id, row.kind, row.dag_id, row.run_id, e)  # fmt: skip
                continue
            if launched:
                log.info("callback %d (%s of %s %s) handed to the executor", row.id, row.kind, row.dag_id, row.run_id)
