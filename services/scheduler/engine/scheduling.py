"""Creating DAG runs and moving task instances: none -> scheduled -> queued, retries, run ends.

Only the partition's lease holder calls this, inside a fenced transaction. The executor
moves queued -> running -> ended concurrently; this module never writes a try in a state
the executor owns, except through guarded updates (heartbeat timeouts).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.scheduler import queries
from services.scheduler.engine import mapping, past
from services.scheduler.engine.callbacks import DeadlineWatch, run_end_callbacks
from services.scheduler.engine.metrics import SchedulerMetrics
from services.scheduler.engine.sensors import sensor_poke_due, timed_step
from services.scheduler.engine.ti_state import (
    PendingWrites,
    RunTis,
    TiCache,
    TiRow,
    expand_row,
    flush_decisions,
    flush_queued,
    instances,
    upstream_states,
)
from services.scheduler.engine.trigger_rules import TERMINAL, Decision, evaluate
from services.scheduler.queries import RunRow
from spinner import triggering
from spinner.db.models import DagModel, DagRun, SerializedDagModel, TaskInstance
from spinner.mapping import DEFAULT_MAX_MAP_LENGTH, NO_MAP_INDEX
from spinner.sdk.params import ParamValidationError, validate_conf
from spinner.sdk.serialization import SerializedDAG, SerializedTask, deserialize_dag

log = logging.getLogger(__name__)
IN_FLIGHT = frozenset({"queued", "running"})  # a try the executor has or may have: it ends behind the scheduler's back

TryId = tuple[str, str, str, int, int]  # (dag_id, run_id, task_id, map_index, try_number)


class TriggerError(Exception):
    """Base of the errors a trigger request can get; the server maps each to a status code."""


class DagNotFound(TriggerError):
    pass


class InvalidTrigger(TriggerError):
    pass


class RunExists(TriggerError):
    pass


@dataclass(frozen=True)
class QueuedTask:
    """A try that was just queued and must be handed to the executor."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int  # -1: an unmapped task; 0, 1, ...: an instance of a mapped task
    try_number: int
    bundle_version: str
    relative_fileloc: str
    execution_timeout: float
    executor_config: dict[str, Any]
    trace_context: str


@dataclass(frozen=True)
class CachedDag:
    dag_hash: str
    dag: SerializedDAG
    fileloc: str  # relative to the snapshot root
    order: tuple[str, ...]  # task ids, upstream before downstream
    leaves: tuple[str, ...]


def _cache(row: SerializedDagModel) -> CachedDag:
    sdag = deserialize_dag(row.data)
    order: list[str] = []
    seen: set[str] = set()

    def visit(task_id: str) -> None:
        if task_id in seen:
            return
        seen.add(task_id)
        for up in sorted(sdag.tasks[task_id].upstream_task_ids):
            if up in sdag.tasks:
                visit(up)
        order.append(task_id)

    for task_id in sorted(sdag.tasks):
        visit(task_id)
    leaves = tuple(t for t in order if not sdag.tasks[t].downstream_task_ids)
    return CachedDag(row.dag_hash, sdag, row.fileloc, tuple(order), leaves)


def _queued_task(run: DagRun, ti: TaskInstance | TiRow, cached: CachedDag) -> QueuedTask:
    """What the executor needs to start a queued try: the run's pinned snapshot and the task's limits."""
    task = cached.dag.tasks[ti.task_id]
    return QueuedTask(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index,
        try_number=ti.try_number,
        bundle_version=run.bundle_version,
        relative_fileloc=cached.fileloc,
        execution_timeout=task.execution_timeout.total_seconds() if task.execution_timeout else 0.0,
        executor_config=dict(task.executor_config or {}),
        trace_context=run.trace_context,
    )


def _rows_in_order(run: DagRun, cached: CachedDag, tis: RunTis) -> Iterator[tuple[SerializedTask, TiRow, bool]]:
    """Each task's rows (every instance of a mapped task), upstream tasks first, with a new -1 row
    (True) for a task that has none yet. Lazy: a task's upstream rows are decided before it is read."""
    for task_id in cached.order:
        task = cached.dag.tasks[task_id]
        ti = tis.get((task_id, NO_MAP_INDEX))
        if ti is not None:
            yield task, ti, False
        elif rows := instances(tis, task_id):
            for ti in rows:
                yield task, ti, False
        else:
            ti = TiRow(run.dag_id, run.run_id, task_id, None, 0, task.retries, None, task.pool)
            tis[ti.key] = ti
            yield task, ti, True


class SchedulingEngine:
    def __init__(
        self,
        partition: str,
        *,
        clock: Callable[[], dt.datetime],
        heartbeat_timeout: float,
        resubmit_after: float = 15.0,
        max_running_tasks: int = 1024,
        metrics: SchedulerMetrics | None = None,
        full_pass_interval: float = 10.0,
        change_margin: float = 5.0,
        max_map_length: int = DEFAULT_MAX_MAP_LENGTH,
    ) -> None:
        self.partition = partition
        self._max_map_length = max_map_length
        self.metrics = metrics
        self._max_running = max_running_tasks
        self._clock = clock
        self._heartbeat_timeout = dt.timedelta(seconds=heartbeat_timeout)
        self._resubmit_after = dt.timedelta(seconds=resubmit_after)
        self._dags: dict[str, CachedDag] = {}
        # Incremental passes: which active runs need a look (see _runs_to_examine).
        self._full_pass_interval = full_pass_interval
        # Tries' end dates come from the executor's clock and commit after they are stamped (a busy
        # executor's batch takes a while): look back this far before the previous pass began.
        self._change_margin = dt.timedelta(seconds=change_margin)
        self._pass_began: dt.datetime | None = None
        self._last_full_pass: float | None = None
        self._watermark: dt.datetime | None = None
        self._seen: set[tuple[str, str]] = set()
        self._unsettled: set[tuple[str, str]] = set()
        # Runs with sensors between pokes, by their earliest next poke: looked at again only then, so
        # a thousand waiting sensors cost a pass nothing until one is due (docs/adr/0006-sensor-reschedule.md).
        self._sensor_waits: dict[tuple[str, str], dt.datetime] = {}
        # Runs with a try queued or running as far as the cached rows know: only such a try can end behind
        # the scheduler's back (it queues every try itself; an action clears the cache). With none, an
        # incremental pass reads no ended tries at all: waiting sensors, retries and limits cost no query.
        self._in_flight: set[tuple[str, str]] = set()
        self._tis = TiCache()
        self._full_requested = False  # see request_full_pass
        self._outages: set[str] = set()  # see outage_began
        self._judge_after: dt.datetime | None = None
        self.deadlines: DeadlineWatch | None = None  # DAG deadlines (engine/callbacks.py), set by the service

    # --- serialized DAG cache ----------------------------------------------------------

    async def load(
        self, session: AsyncSession, dag_ids: Sequence[str], *, recheck: bool = True
    ) -> dict[str, CachedDag]:
        """Serialized DAGs by id; deserialized again only when their hash changed.

        `recheck=False` (an incremental pass) trusts the DAGs already cached and reads only the others:
        serialized DAGs are written only by this partition's DAG processor, under the lease, and it
        loads what it changed at once (`refresh_next_dagrun`); a full pass checks every hash again."""
        wanted = set(dag_ids)
        ask = wanted if recheck else {d for d in wanted if d not in self._dags}
        hashes = await queries.serialized_hashes(session, ask) if ask else {}
        for gone in ask - hashes.keys():
            self._dags.pop(gone, None)
        stale = [d for d, h in hashes.items() if d not in self._dags or self._dags[d].dag_hash != h]
        rows: Sequence[SerializedDagModel] = await queries.serialized_dags(session, stale)
        for row in rows:
            try:
                self._dags[row.dag_id] = _cache(row)
            except (KeyError, ValueError, TypeError) as e:
                log.error("serialized DAG %s cannot be read: %s", row.dag_id, e)
        return {d: self._dags[d] for d in wanted if d in self._dags}

    async def _load_dags(self, session: AsyncSession, dag_ids: Sequence[str]) -> dict[str, SerializedDAG]:
        return {d: c.dag for d, c in (await self.load(session, dag_ids)).items()}

    # --- runs ------------------------------------------------------------------------

    async def refresh_next_dagrun(self, session: AsyncSession, dag_ids: Sequence[str]) -> None:
        """Recomputes when each DAG's next scheduled run is due (after a parse changed it)."""
        dags = await self._load_dags(session, dag_ids)
        now = self._clock()
        for dag_id, sdag in dags.items():
            model = await session.get(DagModel, dag_id)
            if model is not None:
                await self._set_next(session, model, sdag, now)

    async def _set_next(self, session: AsyncSession, model: DagModel, sdag: SerializedDAG, now: dt.datetime) -> None:
        last_end = await queries.last_scheduled_interval_end(session, model.dag_id)
        info = sdag.timetable.next_dagrun_info(
            last_data_interval_end=last_end, start_date=sdag.start_date, catchup=sdag.catchup, now=now
        )
        model.next_dagrun = info.start if info else None
        model.next_dagrun_data_interval_start = info.start if info else None
        model.next_dagrun_data_interval_end = info.end if info else None

    async def create_scheduled_runs(self, session: AsyncSession) -> int:
        """One run for each DAG whose next data interval has ended. Returns how many were made."""
        now = self._clock()
        due = await queries.due_dags(session, self.partition, now)
        if not due:
            return 0
        dags = await self._load_dags(session, [d.dag_id for d in due])
        made = 0
        for model in due:
            sdag = dags.get(model.dag_id)
            if sdag is None:
                continue
            last_end = await queries.last_scheduled_interval_end(session, model.dag_id)
            info = sdag.timetable.next_dagrun_info(
                last_data_interval_end=last_end, start_date=sdag.start_date, catchup=sdag.catchup, now=now
            )
            if info is not None and info.end <= now:
                run_id = f"scheduled__{info.start.isoformat()}"
                if not await queries.run_exists(session, model.dag_id, run_id, info.start):
                    session.add(
                        DagRun(
                            dag_id=model.dag_id,
                            run_id=run_id,
                            run_type="scheduled",
                            state="queued",
                            logical_date=info.start,
                            data_interval_start=info.start,
                            data_interval_end=info.end,
                            conf={},
                            partition=self.partition,
                            bundle_version=model.bundle_version,
                            triggered_by="scheduler",
                            created_at=now,
                        )
                    )
                    await session.flush()
                    made += 1
            await self._set_next(session, model, sdag, now)
        return made

    async def trigger(
        self,
        session: AsyncSession,
        *,
        dag_id: str,
        conf_json: str,
        run_id: str,
        logical_date: str,
        triggered_by: str,
        trace_context: str,
    ) -> DagRun:
        model = await queries.get_active_dag(session, self.partition, dag_id)
        if model is None:
            raise DagNotFound(f"DAG '{dag_id}' not found in partition {self.partition}")
        try:
            conf = json.loads(conf_json) if conf_json.strip() else {}
        except ValueError as e:
            raise InvalidTrigger(f"conf is not valid JSON: {e}") from None
        if not isinstance(conf, dict):
            raise InvalidTrigger("conf must be a JSON object")
        now = self._clock()
        if logical_date:
            try:
                when = dt.datetime.fromisoformat(logical_date)
            except ValueError:
                raise InvalidTrigger(f"logical_date {logical_date!r} is not an ISO 8601 time") from None
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        else:
            when = now
        run_id = run_id or f"manual__{when.isoformat()}"
        problem = triggering.run_id_problem(run_id)  # the gateway checks too; a task's trigger_run_id only here
        if problem:
            raise InvalidTrigger(problem)
        if await queries.run_exists(session, dag_id, run_id, when):
            raise RunExists(f"DAG '{dag_id}' already has a run {run_id!r} or one at {when.isoformat()}")
        dags = await self._load_dags(session, [dag_id])
        sdag = dags.get(dag_id)
        if sdag is not None:
            try:
                validate_conf(sdag.params, conf)  # a bad conf creates nothing
            except ParamValidationError as e:
                raise InvalidTrigger(f"DAG '{dag_id}': {e}") from None
        interval = sdag.timetable.infer_manual_data_interval(when) if sdag else None
        source = triggering.decode(triggered_by)  # a task's TriggerDagRunOperator: the run links back to it
        run = DagRun(
            dag_id=dag_id,
            run_id=run_id,
            run_type="manual",
            state="queued",
            logical_date=when,
            data_interval_start=interval.start if interval else when,
            data_interval_end=interval.end if interval else when,
            conf=conf,
            partition=self.partition,
            bundle_version=model.bundle_version,
            triggered_by=(source.label if source else triggered_by)[:200],
            triggering_dag_id=source.dag_id if source else None,
            triggering_run_id=source.run_id if source else None,
            triggering_task_id=source.task_id if source else None,
            trace_context=trace_context,
            created_at=now,
        )
        session.add(run)
        await session.flush()
        return run

    # --- task instances --------------------------------------------------------------

    def begin_pass(self) -> None:
        """Called before the pass's transaction opens: a try that commits after its snapshot was taken is
        invisible to this pass, so the next one must look back to here, not to when `schedule` ran.
        A full pass asked for before here is this one; one asked for during the pass is the next."""
        self._pass_began = self._clock()
        if self._full_requested:
            self._full_requested = False
            self._tis.clear()
            self._last_full_pass = None

    def outage_began(self, what: str) -> None:
        """Runners cannot heartbeat now: the database is away (a pass failed on it) or the executor is
        (its health check failed). No running try is timed out until a whole heartbeat timeout after
        every outage ended (see stale_tries): its runner gets that long to show it is alive."""
        if what not in self._outages:
            log.warning("partition %s: the %s is unavailable; no try is timed out until it is back", self.partition,
                        what)  # fmt: skip
        self._outages.add(what)

    def outage_ended(self, what: str) -> None:
        if what in self._outages:
            self._outages.discard(what)
            self._judge_after = self._clock() + self._heartbeat_timeout

    def began_leading(self) -> None:
        """This scheduler just took the partition (it started, or a standby took over). It cannot know
        how long the runners could not heartbeat before (every service stopped and started again, as
        standalone's restart does: the last heartbeats are as old as the stop), so no running try is
        timed out until a whole heartbeat timeout from now: a runner that is alive shows it in that time,
        one whose task ended reports its end (its Finish retries until an executor answers)."""
        self._judge_after = self._clock() + self._heartbeat_timeout

    def request_full_pass(self) -> None:
        """The next pass looks at every active run and reads all their tries again (after an action,
        a new lease, a failed pass, or a missed change). Only asked for here: an action commits while a
        pass may be awaiting the database, and that pass goes on with the rows it has; the next pass
        drops them (`begin_pass`)."""
        self._full_requested = True

    def _runs_to_examine(
        self, runs: Sequence[RunRow], dags: dict[str, CachedDag], ended: set[tuple[str, str]], now: dt.datetime
    ) -> list[RunRow]:
        """The runs where something may have changed: new or still queued runs, runs with a try that
        ended since the last pass, runs with tries waiting on a limit or a retry delay, runs past
        their timeout. Every run is looked at at least every `full_pass_interval` whatever happens."""
        out = []
        for run in runs:
            key = (run.dag_id, run.run_id)
            cached = dags.get(run.dag_id)
            timeout = cached.dag.dagrun_timeout if cached else None
            if (
                cached is None
                or run.state == "queued"
                or key not in self._seen
                or key in ended
                or key in self._unsettled
                or (key in self._sensor_waits and self._sensor_waits[key] <= now)
                or (timeout and run.start_date and now - run.start_date > timeout)
            ):
                out.append(run)
        return out

    async def schedule(self, session: AsyncSession) -> list[QueuedTask]:
        """Starts queued runs, decides every waiting task, queues what may run, ends finished runs."""
        now = self._clock()
        # Every active run as a few columns; only the runs this pass looks at are read whole (a pass where
        # every run waits reads none of them).
        runs = await queries.active_run_rows(session, self.partition)
        if not runs:
            self._seen.clear()
            self._unsettled.clear()
            self._sensor_waits.clear()
            self._in_flight.clear()
            self._tis.clear()
            if self.metrics is not None:
                self.metrics.count_pass("idle")
            return []
        mono = time.monotonic()
        full = (
            self._last_full_pass is None
            or self._watermark is None
            or mono - self._last_full_pass >= self._full_pass_interval
        )
        if self.metrics is not None:
            self.metrics.count_pass("full" if full else "incremental")
        dags = await self.load(session, [r.dag_id for r in runs], recheck=full)
        if self.deadlines is not None:
            await self.deadlines.check(session, runs, dags, now)
        current = {(r.dag_id, r.run_id) for r in runs}
        if full:
            # Every run is looked at; the cached rows of a run are read again only when the database's
            # summary of them differs (a full pass of 1,000 waiting sensors reads 10 rows, not 1,000).
            self._tis.keep_only(current)
            await self._tis.verify(session, current)
            chosen = list(runs)
            self._last_full_pass = mono
        else:
            assert self._watermark is not None  # else the pass is full
            self._tis.keep_only(current)
            since = self._watermark - self._change_margin
            ended = await self._tis.refresh_ended(session, self.partition, since) if self._in_flight else set()
            chosen = self._runs_to_examine(runs, dags, ended, now)
        examined = await queries.runs_by_id(session, [r.id for r in chosen])
        self._watermark = min(now, self._pass_began or now)
        await self._tis.load(session, [(r.dag_id, r.run_id) for r in examined])
        self._seen = (self._seen & current) | {(r.dag_id, r.run_id) for r in examined}
        self._unsettled &= current
        self._sensor_waits = {k: v for k, v in self._sensor_waits.items() if k in current}
        self._in_flight &= current

        running_runs: dict[str, int] = defaultdict(int)
        for row in runs:
            if row.state == "running":
                running_runs[row.dag_id] += 1

        writes = PendingWrites()
        candidates: list[tuple[DagRun, TiRow, CachedDag]] = []
        expansions: list[tuple[DagRun, CachedDag, TiRow]] = []  # mapped tasks whose trigger rule said run
        pasts = await past.load(
            session,
            [(r, dags[r.dag_id].dag, self._tis.runs[(r.dag_id, r.run_id)]) for r in examined if r.dag_id in dags],
        )
        for run in examined:
            key = (run.dag_id, run.run_id)
            self._unsettled.discard(key)
            cached = dags.get(run.dag_id)
            if cached is None:
                run.state, run.end_date = "failed", now
                log.warning("run %s of %s failed: its DAG is gone", run.run_id, run.dag_id)
                self._tis.drop(key)
                continue
            sdag = cached.dag
            if run.state == "queued":
                if running_runs[run.dag_id] >= sdag.max_active_runs:
                    continue
                run.state, run.start_date = "running", now
                running_runs[run.dag_id] += 1
            tis = self._tis.runs[key]
            run_timeout = sdag.dagrun_timeout
            if run_timeout and run.start_date and now - run.start_date > run_timeout:
                await flush_decisions(session, writes)
                await self._time_out(session, run, run_timeout, now)
                session.add_all(run_end_callbacks(run, cached, self.partition, now, "dagrun_timeout"))
                self._tis.drop(key)
                continue
            self._decide(run, cached, tis, now, writes, pasts.get(key), expansions)
            if all(ti.state in TERMINAL for ti in tis.values()):
                failed = any(
                    ti.state in ("failed", "upstream_failed") for t in cached.leaves for ti in instances(tis, t)
                )
                run.state, run.end_date = ("failed" if failed else "success"), now
                log.info("run %s of %s ended: %s", run.run_id, run.dag_id, run.state)
                reason = "task_failure" if failed else "success"
                session.add_all(run_end_callbacks(run, cached, self.partition, now, reason))
                self._tis.drop(key)
                continue
            if any(ti.state in ("scheduled", "up_for_retry") for ti in tis.values()):
                self._unsettled.add(key)  # waits on a limit or a retry delay: look again next pass
            self._note_sensor_waits(key, tis)
            if any(ti.state in IN_FLIGHT for ti in tis.values()):
                self._in_flight.add(key)
            else:
                self._in_flight.discard(key)
            candidates.extend((run, ti, cached) for ti in tis.values() if ti.state == "scheduled")
        # New task instances and decisions are written before the pools are locked: the lock is held briefly.
        if await flush_decisions(session, writes):
            self._missed_change()
        if expansions:
            candidates.extend(await self._expand(session, expansions, now, writes))
        await session.flush()

        # Highest priority first, then oldest run: deterministic, so concurrent limits are fair.
        candidates.sort(
            key=lambda c: (
                -c[2].dag.tasks[c[1].task_id].priority_weight,
                c[0].logical_date,
                c[1].task_id,
                c[1].map_index,
            )
        )
        queued: list[QueuedTask] = []
        room = self._max_running - await queries.active_try_count(session, self.partition) if candidates else 0
        # Read only when something may be queued: a pass where every run waits (on sensors between
        # pokes, say) costs no count of active tries.
        active_tasks: dict[str, int] = defaultdict(
            int, await queries.active_tries_by_dag(session, self.partition) if candidates else {}
        )
        # Pools are shared by every partition: lock their rows, then count, in this transaction.
        pool_names = {c[1].pool for c in candidates}
        slots = await queries.lock_pools(session, pool_names)
        used = await queries.pool_occupancy(session, pool_names)
        for run, ti, cached in candidates:
            if room <= 0:
                break
            if active_tasks[run.dag_id] >= cached.dag.max_active_tasks:
                continue
            if ti.pool not in slots:
                await self._fail_for_pool(session, ti, now)
                continue
            if used.get(ti.pool, 0) >= slots[ti.pool]:
                continue
            used[ti.pool] = used.get(ti.pool, 0) + 1
            room -= 1
            task = cached.dag.tasks[ti.task_id]
            self._observe_delay(run, task.upstream_task_ids, self._tis.runs[(run.dag_id, run.run_id)], ti, now)
            poke = ti.reschedule_at is not None  # a rescheduled sensor's next poke keeps its try_number
            ti.state, ti.try_number, ti.end_date = "queued", ti.try_number + (0 if poke else 1), None
            writes.queue(ti, now)
            ti.reschedule_at = None
            active_tasks[run.dag_id] += 1
            queued.append(_queued_task(run, ti, cached))
            self._in_flight.add((run.dag_id, run.run_id))
        if await flush_queued(session, writes):
            # A try changed under the pass (it should not: actions and the pass share the loop). The
            # executor refuses a try that is not queued; look at everything again next pass.
            self._missed_change()
        await session.flush()
        return queued

    async def _expand(
        self,
        session: AsyncSession,
        expansions: Sequence[tuple[DagRun, CachedDag, TiRow]],
        now: dt.datetime,
        writes: PendingWrites,
    ) -> list[tuple[DagRun, TiRow, CachedDag]]:
        """Expands the mapped tasks whose trigger rule said run this pass (engine/mapping.py), after the
        pass's decisions are written (a task's -1 row may be new). Returns the new scheduled instances."""
        inputs = await mapping.read_inputs(
            session,
            [(run.dag_id, run.run_id, cached.dag, cached.dag.tasks[row.task_id]) for run, cached, row in expansions],
        )
        scheduled: list[tuple[DagRun, TiRow, CachedDag]] = []
        for run, cached, row in expansions:
            task = cached.dag.tasks[row.task_id]
            result = mapping.outcome(run.dag_id, run.run_id, cached.dag, task, inputs, self._max_map_length)
            key = (run.dag_id, run.run_id)
            self._unsettled.add(key)  # its downstream, or the run's end, is decided next pass
            if result.state is not None:
                row.state, row.end_date = result.state, now
                writes.decide(
                    row, None, {"state": result.state, "start_date": now, "end_date": now, "error": result.error}
                )
                log.info("task %s of run %s of %s not expanded: %s", row.task_id, run.run_id, run.dag_id, result.error)
                continue
            # Instances the scheduler itself ends or waits on (EmptyOperator, a time sensor) are left
            # none for the next pass to decide like any other; the rest are scheduled now.
            state = None if task.ends_in_scheduler or task.timed_wait is not None else "scheduled"
            if not await expand_row(session, row, state):
                self._missed_change()  # its -1 row changed under the pass; the next pass decides again
                continue
            tis = self._tis.runs[key]
            del tis[row.key]
            row.map_index, row.state = 0, state
            tis[row.key] = row
            made = [row]
            for map_index in range(1, result.length):
                instance = TiRow(
                    run.dag_id, run.run_id, task.task_id, state, 0, task.retries, None, task.pool, None, map_index
                )
                tis[instance.key] = instance
                writes.insert(self._new_row(run, task, instance, None, {}))
                made.append(instance)
            if state == "scheduled":
                scheduled.extend((run, instance, cached) for instance in made)
        if await flush_decisions(session, writes):
            self._missed_change()
        return scheduled

    def _note_sensor_waits(self, key: tuple[str, str], tis: RunTis) -> None:
        waits = [ti.reschedule_at for ti in tis.values() if ti.state == "up_for_reschedule"]
        if not waits:
            self._sensor_waits.pop(key, None)
        elif any(w is None for w in waits):
            self._unsettled.add(key)  # no time known: look every pass
        else:
            self._sensor_waits[key] = min(w for w in waits if w is not None)

    def _missed_change(self) -> None:
        log.warning("partition %s: a task instance changed during the pass; reading all of them again", self.partition)
        self.request_full_pass()

    async def _fail_for_pool(self, session: AsyncSession, row: TiRow, now: dt.datetime) -> None:
        ti = await session.get(TaskInstance, (row.dag_id, row.run_id, row.task_id, row.map_index))
        if ti is None:
            return
        ti.state, ti.end_date = "failed", now
        ti.error = f"Pool '{ti.pool}' does not exist; create it (spinner pools set) or fix the task's pool"
        session.add(queries.history_row(ti))
        row.state, row.end_date = "failed", now

    def _observe_delay(
        self,
        run: DagRun,
        upstream: frozenset[str],
        tis: RunTis,
        ti: TiRow,
        now: dt.datetime,
    ) -> None:
        if self.metrics is None or ti.try_number > 0:  # only first tries measure scheduling delay
            return
        ends = [r.end_date for u in upstream for r in instances(tis, u) if r.end_date is not None]
        if ends:
            self.metrics.downstream((now - max(e for e in ends if e is not None)).total_seconds())
        else:
            due = run.data_interval_end if run.run_type == "scheduled" and run.data_interval_end else run.created_at
            self.metrics.first_task((now - due).total_seconds())

    async def _time_out(self, session: AsyncSession, run: DagRun, limit: dt.timedelta, now: dt.datetime) -> None:
        """The run took longer than dagrun_timeout: it fails and what has not ended is skipped."""
        reason = f"The run passed its dagrun_timeout of {limit.total_seconds():g} s"
        for ti in await queries.task_instances_of(session, [run]):
            if ti.state not in TERMINAL:
                await queries.guarded_set_state(
                    session, ti, expected_state=ti.state, values={"state": "skipped", "end_date": now, "error": reason}
                )
        run.state, run.end_date = "failed", now
        log.info("run %s of %s failed: %s", run.run_id, run.dag_id, reason)

    def _decide(
        self,
        run: DagRun,
        cached: CachedDag,
        tis: RunTis,
        now: dt.datetime,
        writes: PendingWrites,
        past_states: past.PastStates,
        expansions: list[tuple[DagRun, CachedDag, TiRow]],
    ) -> None:
        """Creates missing task instances and applies trigger rules, depends_on_past and retry delays,
        in topological order. A mapped task that may run is added to `expansions` (see _expand)."""
        for task, ti, new in _rows_in_order(run, cached, tis):
            before = ti.state
            start: dt.datetime | None = None
            extra: dict[str, Any] = {}
            if ti.state is None:
                # Every instance of a mapped upstream counts; one not expanded yet is one unfinished instance.
                decision = evaluate(task.trigger_rule, upstream_states(tis, task.upstream_task_ids))
                if decision is Decision.RUN and not past.allows(task, past_states):
                    self._unsettled.add((run.dag_id, run.run_id))  # waits on the previous run: look every pass
                elif decision is Decision.RUN and task.is_mapped and ti.map_index == NO_MAP_INDEX:
                    expansions.append((run, cached, ti))  # stays none until _expand makes its instances
                elif decision is Decision.RUN and task.ends_in_scheduler:
                    ti.state, start, ti.end_date = "success", now, now  # EmptyOperator: no process
                elif decision is Decision.RUN:
                    ti.state = "scheduled"
                elif decision in (Decision.SKIP, Decision.UPSTREAM_FAILED):
                    ti.state, start, ti.end_date = decision.value, now, now
            elif ti.state == "up_for_retry":
                ended = ti.end_date or now
                if now >= ended + task.retry_delay_for(ti.try_number):
                    ti.state = "scheduled"
            elif ti.state == "up_for_reschedule":
                if sensor_poke_due(ti, now):
                    ti.state = "scheduled"
            if ti.state in ("scheduled", "up_for_reschedule") and task.timed_wait is not None:
                step = timed_step(task, run, ti, before, now)  # a time sensor: decided here, no process
                if step is not None:
                    ti.state, extra = step.state, step.values
                    ti.reschedule_at = extra.get("reschedule_at", ti.reschedule_at)
                    if step.ended:
                        start, ti.end_date = now, now
            if new:
                writes.insert(self._new_row(run, task, ti, start, extra))
            elif ti.state != before and ti.state is not None:
                values: dict[str, Any] = {"state": ti.state, **extra}
                if start is not None:
                    values.update(start_date=start, end_date=ti.end_date)
                writes.decide(ti, before, values)

    def _new_row(
        self, run: DagRun, task: SerializedTask, ti: TiRow, start: dt.datetime | None, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """The INSERT values of a task instance this pass creates."""
        return {
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "task_id": task.task_id,
            "map_index": ti.map_index,
            "partition": self.partition,
            "state": ti.state,
            "try_number": 0,
            "max_tries": task.retries,
            "operator": task.operator,
            "pool": task.pool,
            "priority_weight": task.priority_weight,
            "hostname": "",
            "executor": "",
            "error": "",
            "start_date": start,
            "end_date": ti.end_date,
            "reschedule_at": extra.get("reschedule_at"),
            "first_poke_at": extra.get("first_poke_at"),
        } | ({"error": extra["error"]} if "error" in extra else {})

    async def stale_tries(
        self,
        session: AsyncSession,
        in_flight: Container[TryId] = frozenset(),
    ) -> tuple[list[QueuedTask], int]:
        """Queued tries the executor may never have got (resubmitted; Submit is idempotent), and
        running tries whose runner stopped heartbeating (failed or retried). Returns both."""
        self.outage_ended("database")  # this pass got through
        now = self._clock()
        resubmit: list[QueuedTask] = []
        stale = await queries.queued_before(session, self.partition, now - self._resubmit_after)
        if stale:
            runs = {(r.dag_id, r.run_id): r for r in await queries.active_runs(session, self.partition)}
            dags = await self.load(session, [t.dag_id for t in stale])
            for ti in stale:
                if (ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number) in in_flight:
                    continue  # still being handed over by this scheduler
                run, cached = runs.get((ti.dag_id, ti.run_id)), dags.get(ti.dag_id)
                if run is None or cached is None or ti.task_id not in cached.dag.tasks:
                    continue
                ti.queued_at = now  # wait a whole period again before the next resubmit
                resubmit.append(_queued_task(run, ti, cached))
        timed_out = 0
        if self._outages or (self._judge_after is not None and now < self._judge_after):
            # The database or the executor is (or was lately) away: runners could not heartbeat. They get a
            # whole timeout to show they are alive before any try is judged dead (their reports wait too).
            return resubmit, 0
        for ti in await queries.running_without_heartbeat(session, self.partition, now - self._heartbeat_timeout):
            new_state = "up_for_retry" if ti.try_number <= ti.max_tries else "failed"
            error = f"The task's runner stopped heartbeating for {self._heartbeat_timeout.total_seconds():.0f} s"
            duration = (now - ti.start_date).total_seconds() if ti.start_date else None
            if await queries.guarded_set_state(
                session,
                ti,
                expected_state="running",
                values={"state": new_state, "end_date": now, "duration": duration, "error": error},
            ):
                await session.refresh(ti)
                session.add(queries.history_row(ti))
                timed_out += 1
        await session.flush()
        return resubmit, timed_out
