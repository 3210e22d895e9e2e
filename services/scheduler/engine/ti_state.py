"""The task instances a scheduling pass decides on, kept between passes as plain rows.

Loading every task instance of every active run as ORM objects each pass made a pass cost
O(active task instances): with 3,000 runs of 25 tasks, 75,000 objects per pass. Instead the
scheduler keeps each active run's task instances as `TiRow`s and, between full passes, reads
only what changed behind its back: tries that ended (the executor, and heartbeat timeouts, set
`end_date`), found through the (partition, end_date) index. Everything else that changes a try
is either this scheduler's own write (applied to the rows as it is made) or an action, which
clears the cache (`request_full_pass`). A full pass every few seconds is the safety net for a
change that was missed: it compares each cached run with a summary the database computes (per
state, how many rows and the sum of their try numbers) and reads again every run that differs. A
pass that failed (its writes rolled back) and an action clear the cache: the next pass reads all.

Writes go out as a few statements per pass instead of one ORM flush per object: new task
instances as one INSERT, decisions as UPDATEs guarded by the state they were decided from,
queued tries as one guarded UPDATE (each UPDATE one statement per 200 rows, spinner/db/bulk.py).

A run's rows are keyed by (task_id, map_index): an unmapped task has one row, -1; a mapped task has
its -1 row until it is expanded, then rows 0 .. n-1, made together (`instances` relies on that).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.bulk import BulkUpdate
from spinner.db.models import TaskInstance
from spinner.mapping import NO_MAP_INDEX

log = logging.getLogger(__name__)

RunKey = tuple[str, str]
TiKey = tuple[str, int]  # (task_id, map_index) within a run
_TI = cast(Table, TaskInstance.__table__)
_COLUMNS = (
    TaskInstance.dag_id,
    TaskInstance.run_id,
    TaskInstance.task_id,
    TaskInstance.state,
    TaskInstance.try_number,
    TaskInstance.max_tries,
    TaskInstance.end_date,
    TaskInstance.pool,
    TaskInstance.reschedule_at,
    TaskInstance.map_index,
)
CHUNK = 500


@dataclass(slots=True)
class TiRow:
    """What a pass needs of one task instance."""

    dag_id: str
    run_id: str
    task_id: str
    state: str | None
    try_number: int
    max_tries: int
    end_date: dt.datetime | None
    pool: str
    # Set while a sensor waits between pokes (up_for_reschedule) and until its next poke is queued.
    reschedule_at: dt.datetime | None = None
    map_index: int = NO_MAP_INDEX

    @property
    def key(self) -> TiKey:
        return (self.task_id, self.map_index)


RunTis = dict[TiKey, TiRow]


def _row(r: Sequence[Any]) -> TiRow:
    return TiRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])


def instances(tis: RunTis, task_id: str) -> list[TiRow]:
    """The rows of one task in a run: its -1 row (unmapped, or mapped and not expanded yet), else
    its mapped instances 0, 1, ... (none: the task has no row yet)."""
    row = tis.get((task_id, NO_MAP_INDEX))
    if row is not None:
        return [row]
    out: list[TiRow] = []
    while (row := tis.get((task_id, len(out)))) is not None:
        out.append(row)
    return out


def upstream_states(tis: RunTis, task_ids: Iterable[str]) -> list[str | None]:
    """The state of every instance of these tasks (their rows so far), for a trigger rule. On the hot
    path of every pass: an unmapped task costs one lookup."""
    out: list[str | None] = []
    for task_id in task_ids:
        row = tis.get((task_id, NO_MAP_INDEX))
        if row is not None:
            out.append(row.state)
        else:
            out.extend(r.state for r in instances(tis, task_id))
    return out


@dataclass
class PendingWrites:
    """What a pass decided, written with `flush` in a few statements."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    # (expected state, the columns that change) -> rows of the key columns plus those columns' new values
    decided: dict[tuple[str | None, tuple[str, ...]], list[dict[str, Any]]] = field(default_factory=dict)
    queued: list[dict[str, Any]] = field(default_factory=list)
    # A rescheduled sensor's next poke: queued as the same try (docs/adr/0006-sensor-reschedule.md).
    pokes: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, values: dict[str, Any]) -> None:
        self.inserts.append(values)

    def decide(self, row: TiRow, expected: str | None, values: dict[str, Any]) -> None:
        key = (expected, tuple(sorted(values)))
        self.decided.setdefault(key, []).append(
            {"dag_id": row.dag_id, "run_id": row.run_id, "task_id": row.task_id, "map_index": row.map_index, **values}
        )

    def queue(self, row: TiRow, now: dt.datetime) -> None:
        (self.pokes if row.reschedule_at is not None else self.queued).append(
            {"dag_id": row.dag_id, "run_id": row.run_id, "task_id": row.task_id, "map_index": row.map_index,
             "try_number": row.try_number, "queued_at": now}
        )  # fmt: skip

    def __bool__(self) -> bool:
        return bool(self.inserts or self.decided or self.queued or self.pokes)


_KEYS = ["dag_id", "run_id", "task_id", "map_index"]
_DECISIONS: dict[tuple[str | None, tuple[str, ...]], BulkUpdate] = {}
_QUEUE = BulkUpdate(
    _TI,
    keys=_KEYS,
    values=["try_number", "queued_at"],
    constants={"state": "queued", "start_date": None, "end_date": None, "duration": None, "error": "",
               "reschedule_count": 0, "reschedule_at": None, "first_poke_at": None},
    guard=_TI.c.state == "scheduled",
)  # fmt: skip
# The same try again (try_number unchanged); its reschedule_count and first_poke_at carry on.
_QUEUE_POKE = BulkUpdate(
    _TI,
    keys=_KEYS,
    values=["try_number", "queued_at"],
    constants={"state": "queued", "end_date": None, "duration": None, "error": "", "reschedule_at": None},
    guard=(_TI.c.state == "scheduled") & _TI.c.reschedule_at.is_not(None),
)

# A mapped task's -1 row becomes its instance 0, guarded: still unexpanded and undecided
# (docs/adr/0007-dynamic-task-mapping.md). The pass inserts instances 1 .. n-1 only when this moved it.
_EXPAND = BulkUpdate(
    _TI,
    keys=["dag_id", "run_id", "task_id"],
    values=["state"],
    constants={"map_index": 0},
    guard=(_TI.c.map_index == NO_MAP_INDEX) & _TI.c.state.is_(None),
)


async def expand_row(session: AsyncSession, row: TiRow, state: str | None) -> bool:
    """Makes a mapped task's -1 row its instance 0, in `state`; False when it is no longer none at -1."""
    values = {"dag_id": row.dag_id, "run_id": row.run_id, "task_id": row.task_id, "state": state}
    return await _EXPAND.execute(session, [values]) == 1


def _decision(expected: str | None, names: tuple[str, ...]) -> BulkUpdate:
    """The guarded UPDATE of one kind of decision: from `expected`, setting the columns `names`."""
    bulk = _DECISIONS.get((expected, names))
    if bulk is None:
        guard = _TI.c.state.is_(None) if expected is None else _TI.c.state == expected
        bulk = _DECISIONS[(expected, names)] = BulkUpdate(_TI, keys=_KEYS, values=list(names), guard=guard)
    return bulk


async def flush_decisions(session: AsyncSession, writes: PendingWrites) -> int:
    """Writes new task instances and decisions (not queued tries). Returns the rows a guard refused."""
    missed = 0
    if writes.inserts:
        await session.execute(insert(TaskInstance), writes.inserts)
        writes.inserts = []
    for (expected, names), rows in writes.decided.items():
        missed += max(0, len(rows) - await _decision(expected, names).execute(session, rows))
    writes.decided = {}
    return missed


async def flush_queued(session: AsyncSession, writes: PendingWrites) -> int:
    """Moves the queued tries scheduled -> queued (try_number + 1). Returns the rows a guard refused."""
    missed = 0
    if writes.pokes:
        rows, writes.pokes = writes.pokes, []
        missed += max(0, len(rows) - await _QUEUE_POKE.execute(session, rows))
    if writes.queued:
        rows, writes.queued = writes.queued, []
        missed += max(0, len(rows) - await _QUEUE.execute(session, rows))
    return missed


def summary(tis: RunTis) -> dict[str | None, tuple[int, int]]:
    """Per state, how many rows and the sum of their try numbers (what `TiCache.verify` compares)."""
    out: dict[str | None, tuple[int, int]] = {}
    for row in tis.values():
        count, tries = out.get(row.state, (0, 0))
        out[row.state] = (count + 1, tries + row.try_number)
    return out


class TiCache:
    """Task instances of the active runs a scheduler has looked at, by run."""

    def __init__(self) -> None:
        self.runs: dict[RunKey, RunTis] = {}

    def clear(self) -> None:
        self.runs.clear()

    def keep_only(self, active: set[RunKey]) -> None:
        for key in [k for k in self.runs if k not in active]:
            del self.runs[key]

    def drop(self, key: RunKey) -> None:
        self.runs.pop(key, None)

    async def load(self, session: AsyncSession, keys: Iterable[RunKey]) -> None:
        """Reads the task instances of the runs not cached yet (a run with none gets an empty entry)."""
        missing = [k for k in keys if k not in self.runs]
        for key in missing:
            self.runs[key] = {}
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            q = select(*_COLUMNS).where(tuple_(TaskInstance.dag_id, TaskInstance.run_id).in_(chunk))
            for r in (await session.execute(q)).all():
                row = _row(r)
                self.runs[(row.dag_id, row.run_id)][row.key] = row

    async def verify(self, session: AsyncSession, keys: Iterable[RunKey]) -> set[RunKey]:
        """Drops the cached runs whose rows differ from the database's, by a summary of each run's rows
        (per state: how many and the sum of their try numbers), read in one small query per 500 runs.
        Returns the runs dropped (`load` reads them again). A change this cannot see keeps every state's
        count and try sum: a try's end, a retry, a poke, a clear and a new row all change one of them."""
        cached = [k for k in keys if k in self.runs]
        stored: dict[RunKey, dict[str | None, tuple[int, int]]] = {k: {} for k in cached}
        for start in range(0, len(cached), CHUNK):
            chunk = cached[start : start + CHUNK]
            q = (
                select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.state, func.count(),
                       func.sum(TaskInstance.try_number))
                .where(tuple_(TaskInstance.dag_id, TaskInstance.run_id).in_(chunk))
                .group_by(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.state)
            )  # fmt: skip
            for dag_id, run_id, state, count, tries in (await session.execute(q)).all():
                stored[(dag_id, run_id)][state] = (int(count), int(tries or 0))
        dropped: set[RunKey] = set()
        for key in cached:
            if summary(self.runs[key]) != stored[key]:
                del self.runs[key]
                dropped.add(key)
        return dropped

    async def refresh_ended(self, session: AsyncSession, partition: str, since: dt.datetime) -> set[RunKey]:
        """Re-reads the tries that ended at or after `since`; returns the runs where one of them is news:
        a run not cached, or a try whose row differs from the cached one. `since` looks back a few
        seconds (commits land after their end_date), so most tries are read by several passes in a
        row; a run is looked at again only for what it has not seen."""
        q = select(*_COLUMNS).where(TaskInstance.partition == partition, TaskInstance.end_date >= since)
        touched: set[RunKey] = set()
        for r in (await session.execute(q)).all():
            row = _row(r)
            key = (row.dag_id, row.run_id)
            cached = self.runs.get(key)
            if cached is None:
                touched.add(key)
            elif cached.get(row.key) != row:
                cached[row.key] = row
                touched.add(key)
        return touched
