"""What the gateway shows: plain dataclasses built from database rows, turned into JSON as they are."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.errors import InvalidRequest
from spinner.db.models import AuditLog, DagModel, DagRun, TaskInstance, TaskInstanceHistory
from spinner.mapping import NO_MAP_INDEX

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class DagInfo:
    dag_id: str
    partition: str
    tier: int
    schedule: str | None
    is_paused: bool
    owner: str
    tags: list[str]
    description: str
    bundle_version: str
    fileloc: str
    next_dagrun: str | None

    @classmethod
    def of(cls, m: DagModel) -> DagInfo:
        return cls(
            dag_id=m.dag_id, partition=m.partition, tier=m.tier, schedule=m.schedule, is_paused=m.is_paused,
            owner=m.owner, tags=list(m.tags or []), description=m.description, bundle_version=m.bundle_version,
            fileloc=m.fileloc, next_dagrun=iso(m.next_dagrun),
        )  # fmt: skip


@dataclass(frozen=True)
class RunInfo:
    dag_id: str
    run_id: str
    state: str
    run_type: str
    logical_date: str | None
    data_interval_start: str | None
    data_interval_end: str | None
    start_date: str | None
    end_date: str | None
    conf: dict[str, Any]
    bundle_version: str
    triggered_by: str
    # The task whose TriggerDagRunOperator made this run: {"dag_id", "run_id", "task_id"}; None otherwise.
    triggering: dict[str, str] | None = None

    @classmethod
    def of(cls, r: DagRun, can_read: Callable[[str], bool] | None = None) -> RunInfo:
        """`can_read`: the viewer's DAG read check; a triggering task of a DAG they may not read is not shown."""
        if r.triggering_dag_id and can_read is not None and not can_read(r.triggering_dag_id):
            return replace(cls.of(r), triggered_by="a task", triggering=None)
        return cls(
            dag_id=r.dag_id, run_id=r.run_id, state=r.state, run_type=r.run_type, logical_date=iso(r.logical_date),
            data_interval_start=iso(r.data_interval_start), data_interval_end=iso(r.data_interval_end),
            start_date=iso(r.start_date), end_date=iso(r.end_date), conf=dict(r.conf or {}),
            bundle_version=r.bundle_version, triggered_by=r.triggered_by,
            triggering={"dag_id": r.triggering_dag_id, "run_id": r.triggering_run_id, "task_id": r.triggering_task_id}
            if r.triggering_dag_id and r.triggering_run_id and r.triggering_task_id else None,
        )  # fmt: skip


@dataclass(frozen=True)
class TaskInstanceInfo:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int  # -1: an unmapped task (or a mapped one not expanded yet); 0, 1, ...: a mapped task's instances
    state: str | None
    try_number: int
    max_tries: int
    operator: str
    start_date: str | None
    end_date: str | None
    duration: float | None
    error: str
    # A sensor in reschedule mode: its pokes so far, and when the next is due while up_for_reschedule.
    reschedule_count: int = 0
    reschedule_at: str | None = None

    @classmethod
    def of(cls, t: TaskInstance) -> TaskInstanceInfo:
        return cls(
            dag_id=t.dag_id, run_id=t.run_id, task_id=t.task_id, map_index=t.map_index, state=t.state,
            try_number=t.try_number, max_tries=t.max_tries, operator=t.operator, start_date=iso(t.start_date),
            end_date=iso(t.end_date), duration=t.duration, error=t.error, reschedule_count=t.reschedule_count or 0,
            reschedule_at=iso(t.reschedule_at),
        )  # fmt: skip

    @property
    def label(self) -> str:
        """The task id, with the instance's index for a mapped task's instance: 'load [3]'."""
        return self.task_id if self.map_index == NO_MAP_INDEX else f"{self.task_id} [{self.map_index}]"


@dataclass(frozen=True)
class LogLine:
    offset: int
    text: str
    section: str  # "readiness", "task", or "" before the runner's first section marker


@dataclass(frozen=True)
class LogInfo:
    """A chunk of a task try's log as the logs service answered it."""

    lines: list[LogLine]
    next_offset: int
    source: str  # which store answered: local, pod, s3, elasticsearch ("" while the log does not exist yet)
    complete: bool
    try_number: int
    readiness: str = ""  # "passed", "failed", "running" or "" (unknown)
    fallback_reason: str = ""  # why the preferred store did not answer

    def to_api(self) -> dict[str, Any]:
        """The log endpoint's JSON: lines as plain strings (as before sections existed), their sections beside them."""
        return {
            "lines": [line.text for line in self.lines],
            "sections": [line.section for line in self.lines],
            "next_offset": self.next_offset,
            "source": self.source,
            "complete": self.complete,
            "try_number": self.try_number,
            "readiness": self.readiness,
            "fallback_reason": self.fallback_reason,
        }

    def to_event(self) -> dict[str, Any]:
        """One event of the log stream: every line with its offset and section."""
        return {
            "lines": [{"offset": line.offset, "text": line.text, "section": line.section} for line in self.lines],
            "next_offset": self.next_offset,
            "source": self.source,
            "complete": self.complete,
            "readiness": self.readiness,
            "fallback_reason": self.fallback_reason,
        }


@dataclass(frozen=True)
class GridRow:
    """A row of the grid: a task, or the header of a TaskGroup (its tasks' rows follow, one level deeper)."""

    id: str
    depth: int
    group: bool = False
    members: tuple[str, ...] = ()  # a group's task ids, nested groups included
    mapped: bool = False  # a mapped task (docs/adr/0007-dynamic-task-mapping.md): its cells sum up its instances


# A group's square in a run shows the state that needs attention first.
_GROUP_STATE_ORDER = (
    "failed", "upstream_failed", "running", "queued", "up_for_retry", "up_for_reschedule", "scheduled",
)  # fmt: skip


def group_state(states: list[str | None]) -> str | None:
    """The state a group's square shows for one run: the most urgent of its tasks' states.

    A mapped task's cell sums up its instances the same way: failed if any failed, then running,
    queued or up for retry if any is, success when all succeeded (or were skipped), skipped when all were.
    """
    present = set(states)
    for state in _GROUP_STATE_ORDER:
        if state in present:
            return state
    if states and present <= {"success", "skipped"}:
        return "success" if "success" in present else "skipped"
    return None


# The order of the states in a mapped task's stacked bar and in its cell's title: ended, then going, then waiting.
_BAR_ORDER: tuple[str | None, ...] = (
    "success", "skipped", "failed", "upstream_failed", "up_for_retry", "running", "up_for_reschedule", "queued",
    "scheduled", None,
)  # fmt: skip


@dataclass(frozen=True)
class MappedSummary:
    """A mapped task's instances in one run, drawn as one cell: how many, the state they sum up to
    (group_state's rule), and how many are in each state (the cell's stacked bar and title)."""

    run_id: str
    task_id: str
    instances: tuple[TaskInstanceInfo, ...]  # by map_index
    state: str | None
    counts: tuple[tuple[str | None, int], ...]  # (state, instances in it), in _BAR_ORDER, present states only

    @classmethod
    def of(cls, instances: list[TaskInstanceInfo]) -> MappedSummary:
        ordered = tuple(sorted(instances, key=lambda t: t.map_index))
        states = [t.state for t in ordered]
        known = [s for s in _BAR_ORDER if s in states]
        others = sorted({s for s in states if s not in _BAR_ORDER}, key=str)  # states newer than this list
        counts = tuple((s, states.count(s)) for s in [*known, *others])
        return cls(ordered[0].run_id, ordered[0].task_id, ordered, group_state(states), counts)

    @property
    def count(self) -> int:
        return len(self.instances)

    @property
    def label(self) -> str:
        return f"{self.task_id} [{self.count}]"

    @property
    def title(self) -> str:
        """'12 instances: 9 success, 2 running, 1 failed'."""
        parts = ", ".join(f"{n} {s or 'none'}" for s, n in self.counts)
        return f"{self.count} instance{'' if self.count == 1 else 's'}: {parts}"

    def segments(self, width: float) -> list[tuple[str | None, float, float]]:
        """The stacked bar of `width`: (state, x, w) per present state, w in proportion to its instances."""
        out: list[tuple[str | None, float, float]] = []
        x = 0.0
        for state, n in self.counts:
            w = width * n / self.count
            out.append((state, round(x, 2), round(w, 2)))
            x += w
        return out

    @property
    def start_date(self) -> str | None:
        starts = [t.start_date for t in self.instances if t.start_date]
        return min(starts) if starts else None

    @property
    def end_date(self) -> str | None:
        """The last instance's end once every instance has ended; None while any still has to run."""
        ends = [t.end_date for t in self.instances]
        return max(e for e in ends if e) if all(ends) else None


def split_mapped(tis: list[TaskInstanceInfo]) -> tuple[dict[str, TaskInstanceInfo], dict[str, MappedSummary]]:
    """One run's task instances as grid cells: task_id -> its instance for unmapped tasks (and for
    mapped ones not expanded yet: their -1 row), task_id -> MappedSummary for expanded mapped tasks."""
    single: dict[str, TaskInstanceInfo] = {}
    mapped: dict[str, list[TaskInstanceInfo]] = {}
    for t in tis:
        if t.map_index == NO_MAP_INDEX:
            single[t.task_id] = t
        else:
            mapped.setdefault(t.task_id, []).append(t)
    for task_id in mapped:
        single.pop(task_id, None)  # a -1 row beside expanded instances is not one of them
    return single, {task_id: MappedSummary.of(instances) for task_id, instances in mapped.items()}


@dataclass(frozen=True)
class Grid:
    """A DAG's recent runs by task, oldest run first: what the grid view draws."""

    dag: DagInfo
    task_ids: list[str]
    runs: list[RunInfo]
    cells: dict[str, dict[str, TaskInstanceInfo]] = field(default_factory=dict)  # run_id -> task_id -> TI
    rows: list[GridRow] = field(default_factory=list)
    # run_id -> task_id -> its instances, for the mapped tasks expanded in that run (not in `cells`)
    mapped: dict[str, dict[str, MappedSummary]] = field(default_factory=dict)

    @property
    def display_rows(self) -> list[GridRow]:
        return self.rows or [GridRow(t, 0) for t in self.task_ids]

    def state_of(self, run_id: str, task_id: str) -> str | None:
        """The state a task's cell shows in a run: its instance's, or its instances' summed up."""
        summary = self.mapped.get(run_id, {}).get(task_id)
        if summary is not None:
            return summary.state
        ti = self.cells.get(run_id, {}).get(task_id)
        return ti.state if ti is not None else None

    def group_state(self, run_id: str, row: GridRow) -> str | None:
        return group_state([self.state_of(run_id, t) for t in row.members])

    def instances(self, run_id: str) -> list[TaskInstanceInfo]:
        """Every task instance of a run, the instances of its mapped tasks included."""
        out = list(self.cells.get(run_id, {}).values())
        for summary in self.mapped.get(run_id, {}).values():
            out.extend(summary.instances)
        return out


def to_json(value: Any) -> Any:
    """Dataclasses of this module as dicts, shallowly: their fields hold JSON values already.

    Not dataclasses.asdict, whose deep copy was a third of the time of a DAG list request.
    """
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: getattr(value, name) for name in value.__dataclass_fields__}
    return value


def check_limit(limit: int, offset: int = 0) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidRequest(f"offset must be between 0 and {MAX_OFFSET}")


@dataclass(frozen=True)
class TryInfo:
    map_index: int
    try_number: int
    state: str
    start_date: str | None
    end_date: str | None
    duration: float | None
    hostname: str
    error: str

    @classmethod
    def of(cls, h: TaskInstanceHistory) -> TryInfo:
        return cls(
            map_index=h.map_index, try_number=h.try_number, state=h.state, start_date=iso(h.start_date),
            end_date=iso(h.end_date), duration=h.duration, hostname=h.hostname, error=h.error,
        )  # fmt: skip


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: str | None
    username: str
    action: str
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    remote_addr: str
    outcome: str
    details: dict[str, Any]

    @classmethod
    def of(cls, a: AuditLog) -> AuditEntry:
        return cls(
            id=a.id, ts=iso(a.ts), username=a.username, action=a.action, dag_id=a.dag_id, run_id=a.run_id,
            task_id=a.task_id, remote_addr=a.remote_addr, outcome=a.outcome, details=dict(a.details or {}),
        )  # fmt: skip


@dataclass(frozen=True)
class TaskNode:
    """A task of the DAG's graph."""

    task_id: str
    operator: str
    upstream: list[str]
