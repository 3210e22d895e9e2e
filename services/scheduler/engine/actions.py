"""What people do to runs, carried out by the partition's scheduler: clear, mark, pause, backfill.

Each runs inside the scheduler's fenced transaction, and each state change is a guarded
update on the state and try the action saw, so a race with the executor or the loop
neither loses nor doubles a try.

Clear and mark act on every instance of a selected mapped task, or on the instances
`map_indexes` names (docs/adr/0007-dynamic-task-mapping.md); a cleared instance keeps its
map_index (the task is not expanded again).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.scheduler import queries
from services.scheduler.engine.scheduling import (
    CachedDag,
    DagNotFound,
    InvalidTrigger,
    SchedulingEngine,
)
from spinner.db import xcom as db_xcom
from spinner.db.models import DagModel, DagRun, TaskInstance
from spinner.sdk.params import ParamValidationError, validate_conf

MAX_BACKFILL_RUNS = 1000
ENDED = ("success", "failed", "skipped", "upstream_failed")


@dataclass(frozen=True)
class Selection:
    dag_id: str
    run_id: str
    task_ids: Sequence[str]
    include_upstream: bool
    include_downstream: bool
    # Only these instances of the mapped tasks in task_ids; empty: every instance.
    map_indexes: Sequence[int] = ()


def _closure(cached: CachedDag, start: Iterable[str], upstream: bool, downstream: bool) -> set[str]:
    chosen = set(start)
    todo = list(chosen)
    while todo:
        task = cached.dag.tasks[todo.pop()]
        nxt: set[str] = set()
        if upstream:
            nxt |= set(task.upstream_task_ids)
        if downstream:
            nxt |= set(task.downstream_task_ids)
        for t in nxt - chosen:
            if t in cached.dag.tasks:
                chosen.add(t)
                todo.append(t)
    return chosen


class Actions:
    def __init__(self, partition: str, engine: SchedulingEngine, clock: Callable[[], dt.datetime]) -> None:
        self.partition = partition
        self._engine = engine
        self._clock = clock

    async def _dag(self, session: AsyncSession, dag_id: str) -> tuple[DagModel, CachedDag]:
        model = await queries.get_active_dag(session, self.partition, dag_id)
        cached = (await self._engine.load(session, [dag_id])).get(dag_id)
        if model is None or cached is None:
            raise DagNotFound(f"DAG '{dag_id}' not found in partition {self.partition}")
        return model, cached

    async def _select(self, session: AsyncSession, sel: Selection) -> tuple[DagRun, list[TaskInstance], CachedDag]:
        """The run and its chosen task instances, by task_id then map_index."""
        _, cached = await self._dag(session, sel.dag_id)
        run = await queries.get_run(session, sel.dag_id, sel.run_id)
        if run is None:
            raise DagNotFound(f"run '{sel.run_id}' of DAG '{sel.dag_id}' not found")
        unknown = sorted(set(sel.task_ids) - set(cached.dag.tasks))
        if unknown:
            raise InvalidTrigger(f"DAG '{sel.dag_id}' has no task(s) {', '.join(unknown)}")
        if sel.map_indexes:
            if not sel.task_ids:
                raise InvalidTrigger("map_indexes name instances of mapped tasks given in task_ids; give task_ids")
            unmapped = sorted(t for t in sel.task_ids if not cached.dag.tasks[t].is_mapped)
            if unmapped:
                raise InvalidTrigger(f"map_indexes name instances of mapped tasks; not mapped: {', '.join(unmapped)}")
            if any(i < 0 for i in sel.map_indexes):
                raise InvalidTrigger("a map_index is 0 or more (the instances of a mapped task count from 0)")
        wanted = _closure(cached, sel.task_ids or cached.dag.tasks, sel.include_upstream, sel.include_downstream)
        named, indexes = set(sel.task_ids), set(sel.map_indexes)
        tis = [
            ti
            for ti in await queries.task_instances_of(session, [run])
            if ti.task_id in wanted and not (indexes and ti.task_id in named and ti.map_index not in indexes)
        ]
        return run, sorted(tis, key=lambda t: (t.task_id, t.map_index)), cached

    async def clear(self, session: AsyncSession, sel: Selection, only_failed: bool) -> list[str]:
        """Sets the chosen tries back to none, with their retries renewed; the run runs again."""
        run, tis, cached = await self._select(session, sel)
        cleared: list[TaskInstance] = []
        for ti in tis:
            if ti.state is None or (only_failed and ti.state not in ("failed", "upstream_failed")):
                continue
            retries = cached.dag.tasks[ti.task_id].retries  # as Airflow: a cleared task gets its retries again
            if await queries.guarded_set_state(
                session,
                ti,
                expected_state=ti.state,
                values={
                    "state": None, "end_date": None, "start_date": None, "duration": None, "queued_at": None,
                    "next_retry_at": None, "error": "", "max_tries": ti.try_number + retries,
                    "reschedule_count": 0, "reschedule_at": None, "first_poke_at": None,
                },
            ):  # fmt: skip
                cleared.append(ti)
        if cleared and run.state in ("success", "failed"):
            run.state, run.end_date = "queued", None
        # As Airflow: a cleared task instance runs again without the XComs it pushed before.
        await db_xcom.clear_instances(session, [(ti.dag_id, ti.run_id, ti.task_id, ti.map_index) for ti in cleared])
        await session.flush()
        return _task_ids(cleared)

    async def mark(self, session: AsyncSession, sel: Selection, state: str) -> list[str]:
        if state not in ("success", "failed"):
            raise InvalidTrigger(f"state must be success or failed, not {state!r}")
        run, tis, _ = await self._select(session, sel)
        now = self._clock()
        marked: list[TaskInstance] = []
        for ti in tis:
            if ti.state == state:
                continue
            if await queries.guarded_set_state(
                session, ti, expected_state=ti.state,
                values={"state": state, "end_date": now, "start_date": ti.start_date or now,
                        "error": f"marked {state} by a person" if state == "failed" else ti.error},
            ):  # fmt: skip
                marked.append(ti)
        if marked and run.state in ("success", "failed"):
            run.state, run.end_date = "running", None  # the loop decides the run's end again
        await session.flush()
        return _task_ids(marked)

    async def set_paused(self, session: AsyncSession, dag_id: str, paused: bool) -> bool:
        model, _ = await self._dag(session, dag_id)
        model.is_paused = paused
        await session.flush()
        return paused

    async def backfill(
        self, session: AsyncSession, dag_id: str, start: str, end: str, conf_json: str, requested_by: str
    ) -> tuple[list[str], int]:
        model, cached = await self._dag(session, dag_id)
        try:
            first, last = (_parse_time(v) for v in (start, end))
        except ValueError as e:
            raise InvalidTrigger(str(e)) from None
        if last < first:
            raise InvalidTrigger("backfill end is before its start")
        try:
            conf = json.loads(conf_json) if conf_json.strip() else {}
        except ValueError as e:
            raise InvalidTrigger(f"conf is not valid JSON: {e}") from None
        if not isinstance(conf, dict):
            raise InvalidTrigger("conf must be a JSON object")
        try:
            validate_conf(cached.dag.params, conf)
        except ParamValidationError as e:
            raise InvalidTrigger(f"DAG '{dag_id}': {e}") from None
        timetable = cached.dag.timetable
        if not timetable.periodic:
            raise InvalidTrigger(f"DAG '{dag_id}' has no periodic schedule to backfill")
        now = self._clock()
        created: list[str] = []
        skipped = 0
        interval = timetable.next_dagrun_info(last_data_interval_end=None, start_date=first, catchup=True, now=now)
        while interval is not None and interval.start <= last:
            if len(created) + skipped >= MAX_BACKFILL_RUNS:
                raise InvalidTrigger(f"a backfill may create at most {MAX_BACKFILL_RUNS} runs; narrow the range")
            run_id = f"backfill__{interval.start.isoformat()}"
            if await queries.run_exists(session, dag_id, run_id, interval.start):
                skipped += 1
            else:
                session.add(
                    DagRun(
                        dag_id=dag_id, run_id=run_id, run_type="backfill", state="queued", logical_date=interval.start,
                        data_interval_start=interval.start, data_interval_end=interval.end, conf=conf,
                        partition=self.partition, bundle_version=model.bundle_version, triggered_by=requested_by,
                        created_at=now,
                    )
                )  # fmt: skip
                created.append(run_id)
            interval = timetable.next_dagrun_info(
                last_data_interval_end=interval.end, start_date=first, catchup=True, now=now
            )
        await session.flush()
        return created, skipped


def _task_ids(tis: Sequence[TaskInstance]) -> list[str]:
    """The tasks acted on, each once (a mapped task's instances are one task)."""
    return list(dict.fromkeys(ti.task_id for ti in tis))


def _parse_time(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
