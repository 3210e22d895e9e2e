"""The scheduler of one partition: lease, parse, schedule, hand tries to the executor, repeat."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import grpc
from opentelemetry import trace
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler import queries
from services.scheduler.engine.actions import Actions
from services.scheduler.engine.callbacks import CallbackDispatcher
from services.scheduler.engine.leases import Lease, LeaseLost
from services.scheduler.engine.processing import DagProcessor
from services.scheduler.engine.scheduling import QueuedTask, SchedulingEngine, TryId
from spinner import events
from spinner.db.engine import transaction
from spinner.db.errors import brief
from spinner.db.models import DagRun
from spinner.events import EventBus, Waker
from spinner.snapshots import current_snapshot
from spinner.telemetry import attached, context_from_traceparent, current_traceparent

log = logging.getLogger(__name__)
T = TypeVar("T")
SUBMIT_CONCURRENCY = 8  # SubmitMany calls in flight
SUBMIT_BATCH = 200  # tries per SubmitMany
MAX_IN_FLIGHT = 5000  # tries handed over but not yet acknowledged, before the loop waits for the executor
# A try the executor accepted is its to start: resubmitting it after the usual 15 s only adds work
# to a busy executor (its reports can lag that much in a burst). Past this, it is handed over again
# (the executor may have restarted without adopting it).
ACCEPTED_RESUBMIT_AFTER = 60.0
# A hand-over the executor could not take now (restarting, or its database away: UNAVAILABLE) is tried
# again at once and then with backoff, for this long, instead of waiting for the resubmit sweep.
HANDOVER_RETRY_FOR = 30.0
EXECUTOR_PROBE_INTERVAL = 2.0  # seconds between health checks of the executor (see _executor_watch)
_TRANSIENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _try_key(task: QueuedTask) -> TryId:
    return (task.dag_id, task.run_id, task.task_id, task.map_index, task.try_number)


class Submitter(Protocol):
    """Hands a queued try to the executor. Raises on failure; the try stays queued and is resubmitted."""

    async def submit(self, task: QueuedTask, partition: str, epoch: int) -> None: ...

    async def submit_many(
        self, tasks: list[tuple[QueuedTask, str]], partition: str, epoch: int
    ) -> list[str | None]: ...

    async def reachable(self) -> bool:
        """Whether the executor answers now (its runners' heartbeats can reach the database)."""
        ...


@dataclass(frozen=True)
class Status:
    partition: str
    leader: bool
    epoch: int
    dag_count: int
    import_error_count: int
    bundle_version: str


class PartitionScheduler:
    def __init__(
        self,
        *,
        partition: str,
        sessions: async_sessionmaker[AsyncSession],
        lease: Lease,
        processor: DagProcessor,
        engine: SchedulingEngine,
        submitter: Submitter,
        bus: EventBus,
        snapshot_root: Path,
        poll_interval: float,
        tracer: trace.Tracer,
        clock: Callable[[], dt.datetime],
        actions: Actions | None = None,
        callbacks: CallbackDispatcher | None = None,
    ) -> None:
        self.partition = partition
        self._sessions = sessions
        self.lease = lease
        self._processor = processor
        self._engine = engine
        self._submitter = submitter
        self._bus = bus
        self._snapshot_root = snapshot_root
        self._poll = poll_interval
        self._tracer = tracer
        self._clock = clock
        self.waker = Waker()
        self.parse_waker = Waker()
        self._submit_slots = asyncio.Semaphore(SUBMIT_CONCURRENCY)
        self._submits: set[asyncio.Task[None]] = set()
        self._in_flight: set[TryId] = set()
        self._accepted: dict[TryId, float] = {}  # try -> when the executor accepted it
        self._drained = asyncio.Event()
        self._drained.set()
        self.actions = actions or Actions(partition, engine, clock)
        self.callbacks = callbacks

    async def run(self, stop: asyncio.Event) -> None:
        """Schedules and processes DAG files side by side until `stop`; a parse never stalls scheduling."""
        try:
            async with asyncio.TaskGroup() as tg:
                processing = tg.create_task(self._processing_loop(stop))
                renewing = tg.create_task(self._renewal_loop(stop))
                watching = tg.create_task(self._executor_watch(stop))
                await self._scheduling_loop(stop)
                processing.cancel()  # a parse in progress is not worth waiting for at shutdown
                await renewing
                await watching
                await self._cancel_submits()
        finally:  # whatever ended the loops: no parse worker or fork server is left behind
            await self._processor.aclose()
            await self._release()

    async def _scheduling_loop(self, stop: asyncio.Event) -> None:
        """Loops until `stop`; a failed iteration is logged and retried, never fatal."""
        while not stop.is_set():
            busy = False
            try:
                if await self._ensure_lease():
                    busy = await self.iteration()
            except LeaseLost as e:
                log.warning("%s; waiting as a standby", e)
                self._processor.forget()
                await self._cancel_submits()
            except (OperationalError, DBAPIError, OSError) as e:
                log.warning("scheduler iteration failed (will retry): %s", brief(e))
                self._count_error()
                self._engine.outage_began("database")
            except Exception:
                # A bug, not an outage: the pass rolled back and the next one reads everything again. The
                # partition keeps its leader and its other runs; the traceback says what to fix.
                log.exception("scheduler iteration failed unexpectedly (will retry with a full pass)")
                self._count_error()
            if not busy:
                await self.waker.wait(self._poll)

    async def _executor_watch(self, stop: asyncio.Event) -> None:
        """Asks the executor how it is every EXECUTOR_PROBE_INTERVAL while leading: while it is away (a
        restart) its runners cannot heartbeat, so none of their tries may be judged dead by a timeout."""
        away = False
        while not stop.is_set():
            if self.lease.held:
                if await self._submitter.reachable():
                    self._engine.outage_ended("executor")
                    if away:
                        # What the executor that went away had accepted may never start (a runner that died
                        # before its Start while no executor watched): the sweep hands those over again
                        # without waiting for ACCEPTED_RESUBMIT_AFTER. A runner still alive is refused at
                        # its Start if a second one started first (services/executor/reports.py).
                        self._accepted.clear()
                    away = False
                else:
                    self._engine.outage_began("executor")
                    away = True
            try:
                await asyncio.wait_for(stop.wait(), EXECUTOR_PROBE_INTERVAL)
            except TimeoutError:
                pass

    def _count_error(self) -> None:
        if self._engine.metrics is not None:
            self._engine.metrics.loop_errors.add(1, self._engine.metrics.attributes)

    async def _renewal_loop(self, stop: asyncio.Event) -> None:
        """Renews the lease every third of its time to live, however long a pass or its submits take."""
        period = self.lease.ttl.total_seconds() / 3
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), period)
                return  # stopping: never cut a renewal off mid-transaction
            except TimeoutError:
                pass
            if not self.lease.held:
                continue
            try:
                async with transaction(self._sessions) as session:
                    await self.lease.hold(session)
            except LeaseLost as e:
                log.warning("%s; waiting as a standby", e)
            except (OperationalError, DBAPIError, OSError) as e:
                log.warning("could not renew the lease of %s (will retry): %s", self.partition, e)

    async def _processing_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self.lease.held:
                    await self._process_dags(stop)
            except LeaseLost as e:
                log.warning("%s; DAG processing waits", e)
                self._processor.forget()
            except (OperationalError, DBAPIError, OSError) as e:
                log.warning("DAG processing failed (will retry): %s", e)
            await self.parse_waker.wait(self._poll)

    async def _ensure_lease(self) -> bool:
        if self.lease.held:
            return True
        try:
            async with transaction(self._sessions) as session:
                held = await self.lease.try_acquire(session)
        except IntegrityError:
            return False  # another scheduler inserted the row first
        if held:
            self._processor.forget()
            self._engine.began_leading()
            self._engine.request_full_pass()
        return held

    async def _release(self) -> None:
        if not self.lease.held:
            return
        try:
            async with transaction(self._sessions) as session:
                await self.lease.release(session)
        except (OperationalError, DBAPIError, OSError) as e:
            log.warning("could not release the lease of %s: %s", self.partition, e)

    async def iteration(self) -> bool:
        """One scheduling pass. True when it queued work (so the loop goes round again at once)."""
        started = time.perf_counter()
        _forget_older(self._accepted, time.monotonic() - ACCEPTED_RESUBMIT_AFTER)
        self._engine.begin_pass()
        try:
            async with transaction(self._sessions) as session:
                await self.lease.hold(session)
                await self._engine.create_scheduled_runs(session)
                queued = await self._engine.schedule(session)
                resubmit, _ = await self._engine.stale_tries(session, _Handled(self._in_flight, self._accepted))
                callbacks = await self.callbacks.due(session) if self.callbacks is not None else []
        except BaseException:
            self._engine.request_full_pass()  # the pass's writes were rolled back: its cached rows are wrong
            raise
        epoch = self.lease.epoch or 0
        self._hand_over(queued, epoch)
        self._hand_over(resubmit, epoch, again=True)
        if callbacks and self.callbacks is not None:  # committed with the runs' ends: now the executor runs them
            job = asyncio.create_task(self.callbacks.hand_over(callbacks, epoch), name="hand-over-callbacks")
            self._submits.add(job)
            job.add_done_callback(self._submits.discard)
        if len(self._in_flight) > MAX_IN_FLIGHT:  # the executor is behind: let it catch up before queueing more
            await self._drained.wait()
        metrics = self._engine.metrics
        if metrics is not None:
            metrics.loop_duration.record(time.perf_counter() - started, metrics.attributes)
            if queued:
                metrics.queued.add(len(queued), metrics.attributes)
        return bool(queued)

    async def _process_dags(self, stop: asyncio.Event) -> None:
        """Parses what changed in the current snapshot; each file's result is written as soon as it is known."""
        snapshot = current_snapshot(self._snapshot_root)
        if snapshot is None or (snapshot.version == self._processor.version and not self._processor.retry_due()):
            return
        plan = await self._processor.plan(snapshot)
        if plan.removed:
            async with transaction(self._sessions) as session:
                await self.lease.hold(session)
                await self._processor.record(session, [], plan.removed, snapshot)
            self._processor.recorded(plan)
        parses = [asyncio.create_task(self._processor.parse(plan, rel)) for rel in plan.todo]
        try:
            for next_result in asyncio.as_completed(parses):
                result = await next_result
                if stop.is_set():
                    return
                async with transaction(self._sessions) as session:
                    await self.lease.hold(session)
                    changed = await self._processor.record(session, [result], [], snapshot)
                    await self._engine.refresh_next_dagrun(session, changed)
                self._processor.recorded(plan, result)
                self.waker.wake()
        finally:
            # Whatever ends this early (shutdown, a lost lease) ends the parses too: no worker is left behind.
            for task in parses:
                task.cancel()
            await asyncio.gather(*parses, return_exceptions=True)
        async with transaction(self._sessions) as session:
            await self.lease.hold(session)
            await self._processor.record(session, [], [], snapshot)  # every DAG now has this bundle version
        self._processor.finished(plan)
        if plan.todo or plan.removed:
            log.info(
                "partition %s: parsed %d file(s), %d removed, snapshot %s",
                self.partition,
                len(plan.todo),
                len(plan.removed),
                snapshot.version,
            )

    def _hand_over(self, tasks: list[QueuedTask], epoch: int, *, again: bool = False) -> None:
        """Hands tries to the executor in the background, a bounded number at a time, while the loop goes on
        scheduling: a slow executor delays its own starts, not the next pass."""
        for start in range(0, len(tasks), SUBMIT_BATCH):
            chunk = tasks[start : start + SUBMIT_BATCH]
            self._in_flight.update(_try_key(t) for t in chunk)
            job = asyncio.create_task(self._submit_chunk(chunk, epoch, again), name=f"submit-{len(chunk)}")
            self._submits.add(job)
            job.add_done_callback(self._submits.discard)
        if len(self._in_flight) > MAX_IN_FLIGHT // 2:
            self._drained.clear()

    async def _submit_chunk(self, tasks: list[QueuedTask], epoch: int, again: bool) -> None:
        """One SubmitMany call; each try has its own span in its run's trace. `again`: resubmitted tries."""
        try:
            async with self._submit_slots:
                items: list[tuple[QueuedTask, str]] = []
                for task in tasks:
                    with (
                        attached(context_from_traceparent(task.trace_context)),
                        self._tracer.start_as_current_span(
                            "scheduler.queue_task",
                            attributes={
                                "dag_id": task.dag_id,
                                "run_id": task.run_id,
                                "task_id": task.task_id,
                                "map_index": task.map_index,
                            },
                        ),
                    ):
                        items.append((task, current_traceparent()))
                errors = await self._submit_with_retries(items, epoch)
                accepted_at = time.monotonic()
                for task, error in zip(tasks, errors, strict=True):
                    if error is None:
                        key = _try_key(task)
                        self._accepted.pop(key, None)  # to the end: the dict stays in acceptance order
                        self._accepted[key] = accepted_at
                    else:
                        log.warning(
                            "could not hand %s.%s%s (%s, try %d) to the executor%s: %s",
                            task.dag_id, task.task_id, f"[{task.map_index}]" if task.map_index >= 0 else "",
                            task.run_id, task.try_number, " again" if again else "", error,
                        )  # fmt: skip
        finally:
            self._in_flight.difference_update(_try_key(t) for t in tasks)
            if len(self._in_flight) <= MAX_IN_FLIGHT // 2:
                self._drained.set()

    async def _submit_with_retries(self, items: list[tuple[QueuedTask, str]], epoch: int) -> list[str | None]:
        """SubmitMany, again while the executor answers UNAVAILABLE (and this scheduler still leads with
        `epoch`); for each try, None when accepted, else why not (it stays queued: the sweep resubmits it)."""
        deadline = time.monotonic() + HANDOVER_RETRY_FOR
        delay = 0.25
        while True:
            try:
                return await self._submitter.submit_many(items, self.partition, epoch)
            except Exception as e:
                code = e.code() if isinstance(e, grpc.aio.AioRpcError) else None
                if code not in _TRANSIENT_CODES or time.monotonic() + delay > deadline or self.lease.epoch != epoch:
                    return [str(e)] * len(items)
                log.info("the executor cannot take %d tries now (%s); trying again in %.2f s", len(items), code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    async def _cancel_submits(self) -> None:
        """At shutdown or on losing the lease: tries not yet handed over stay queued; the leader resubmits them."""
        jobs = list(self._submits)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    async def trigger(
        self,
        *,
        dag_id: str,
        conf_json: str,
        run_id: str,
        logical_date: str,
        triggered_by: str,
        trace_context: str,
    ) -> DagRun:
        async with transaction(self._sessions) as session:
            await self.lease.hold(session)
            run = await self._engine.trigger(
                session,
                dag_id=dag_id,
                conf_json=conf_json,
                run_id=run_id,
                logical_date=logical_date,
                triggered_by=triggered_by,
                trace_context=trace_context,
            )
        self.waker.wake()
        await self._bus.publish(events.RUN_TRIGGERED, {"dag_id": dag_id, "run_id": run.run_id})
        return run

    async def act(self, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Runs a person's action in a fenced transaction, then wakes the loop."""
        async with transaction(self._sessions) as session:
            await self.lease.hold(session)
            result = await action(session)
        self._engine.request_full_pass()  # an action may change any try of the run; look at all again
        self.waker.wake()
        return result

    async def status(self) -> Status:
        async with self._sessions() as session:
            dag_count = await queries.active_dag_count(session, self.partition)
            errors = await queries.import_error_count(session, self.partition)
        return Status(
            partition=self.partition,
            leader=self.lease.held,
            epoch=self.lease.epoch or 0,
            dag_count=dag_count,
            import_error_count=errors,
            bundle_version=self._processor.version,
        )


class _Handled:
    """The tries a resubmit must skip: being handed over now, or accepted by the executor recently."""

    def __init__(self, in_flight: set[TryId], accepted: dict[TryId, float]):
        self._in_flight = in_flight
        self._accepted = accepted

    def __contains__(self, key: object) -> bool:
        return key in self._in_flight or key in self._accepted


def _forget_older(accepted: dict[TryId, float], before: float) -> None:
    """Drops acceptances older than `before` (the dict is in the order they came)."""
    while accepted:
        key = next(iter(accepted))
        if accepted[key] >= before:
            return
        del accepted[key]
