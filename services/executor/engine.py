"""The executor's domain: turn a queued try into one runner process and record what happens to it.

State moves made here (each a guarded update on try_number and state):
queued -> running (runner Start), running -> success | failed | up_for_retry | skipped
(runner Finish), queued | running -> failed | up_for_retry (process ended without Finish), and
none -> skipped for the other task instances of the run that a succeeding try names (a branch);
running -> up_for_reschedule (a sensor's Finish with RESCHEDULE, docs/adr/0006-sensor-reschedule.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor import queries, rendered, skips
from services.executor.backends.base import (
    EXIT_UNKNOWN,
    BackendClosed,
    ExecutorBackend,
    LaunchRefused,
    LaunchSpec,
    TryKey,
)
from services.executor.callbacks import CallbackRunner
from services.executor.reports import (
    ENDED,
    Outcome,
    ReportRefused,
    ReportWriter,
    RunContext,
    Runner,
    StaleLeaseRefused,
)
from services.executor.tokens import TokenSigner
from services.executor.triggers import DagRunTriggers, TriggeredRun, TriggerRequest
from services.executor.xcoms import PullItem, XComNotRunning, XComRefused, XComs
from spinner import events
from spinner.db.callbacks import is_callback_task_id
from spinner.db.engine import transaction
from spinner.db.errors import retrying
from spinner.db.models import DagRun
from spinner.events import EventBus
from spinner.grpcserver import channel
from spinner.logpaths import complete_marker, local_log_path
from spinner.mapping import NO_MAP_INDEX
from spinner.runner.client import DEFAULT_RETRY_TIMEOUT, RETRY_TIMEOUT_ENV
from spinner.snapshots import current_snapshot, version_path

log = logging.getLogger(__name__)

__all__ = ["ENDED", "Executor", "ExecutorError", "Outcome", "RunContext", "SubmitInfo"]


class ExecutorError(Exception):
    """Base of the executor's domain errors; the server maps each to a status code."""


class NotQueued(ExecutorError):
    pass


class BadToken(ExecutorError):
    pass


class StaleLease(ExecutorError):
    pass


class InvalidRequest(ExecutorError):
    pass


class ShuttingDown(ExecutorError):
    pass


class NotConfigured(ExecutorError):
    """What was asked needs a setting this executor lacks (no SMTP server), or an outside server refused."""


@dataclass(frozen=True)
class SubmitInfo:
    key: TryKey
    partition: str
    bundle_version: str
    relative_fileloc: str
    lease_epoch: int
    execution_timeout: float
    executor_config_json: str


def _run_context(run: DagRun) -> RunContext:
    def iso(value: dt.datetime | None) -> str:
        return value.isoformat() if value else ""

    return RunContext(
        logical_date=iso(run.logical_date),
        data_interval_start=iso(run.data_interval_start),
        data_interval_end=iso(run.data_interval_end),
        conf_json=json.dumps(run.conf or {}),
        run_type=run.run_type,
    )


class Executor:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        signer: TokenSigner,
        bus: EventBus,
        snapshot_root: Path,
        log_dir: Path,
        name: str,
        clock: Callable[[], dt.datetime],
        heartbeat_interval: float = 5.0,
        meter: metrics.Meter | None = None,
        runner_env: dict[str, str] | None = None,
        xcom_max_bytes: int = 64 * 1024,
        scheduler_channel: Callable[[str], grpc.aio.Channel] = channel,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
    ) -> None:
        self._sessions = sessions
        # How long a database outage is waited out: by runners (their reports) and by this executor
        # (its record of a process's end), spinner/db/errors.py.
        self.retry_timeout = retry_timeout
        self._runner_env = dict(runner_env or {})  # where runners ship and archive logs (LogStoreSettings)
        # The runner checks the limit too, to fail with the message before sending a huge value.
        self._runner_env["SPINNER_XCOM_MAX_BYTES"] = str(xcom_max_bytes)
        self._runner_env[RETRY_TIMEOUT_ENV] = str(retry_timeout)
        self.xcoms = XComs(sessions, clock=clock, max_bytes=xcom_max_bytes)
        self._signer = signer
        self._bus = bus
        self._snapshot_root = snapshot_root
        self._log_dir = log_dir
        self.name = name
        self._clock = clock
        self._heartbeat_interval = heartbeat_interval
        self.runner_address = ""
        self.runner_python = sys.executable  # the image's interpreter for pods ("python")
        self.reports = ReportWriter(sessions, clock=clock, run_context=_run_context)
        self._previous = rendered.PreviousSuccessCache(clock)
        self.triggers = DagRunTriggers(sessions, clock, scheduler_channel)  # TriggerDagRunOperator
        self.backend: ExecutorBackend | None = None
        # DAG callbacks, deadline notifiers and email (services/executor/callbacks.py).
        self.callbacks = CallbackRunner(
            self, sessions=sessions, signer=signer, snapshot_root=snapshot_root, log_dir=log_dir,
            runner_env=self._runner_env, clock=clock,
        )  # fmt: skip
        meter = meter or metrics.NoOpMeter("spinner.executor")
        self._queued_to_running = meter.create_histogram(
            "spinner.executor.queued_to_running", unit="s", description="From queued to the runner's start"
        )
        self._ended = meter.create_counter("spinner.executor.tries_ended", description="Tries ended, by state")

    def _backend(self) -> ExecutorBackend:
        if self.backend is None:
            raise RuntimeError("executor backend not attached")
        return self.backend

    def log_path(self, key: TryKey) -> Path:
        return local_log_path(self._log_dir, key.dag_id, key.run_id, key.task_id, key.try_number, key.map_index)

    # --- from schedulers -------------------------------------------------------------

    async def submit(self, info: SubmitInfo) -> bool:
        """Starts the try if it is queued; True when this call launched it."""
        key = info.key
        if not (key.dag_id and key.run_id and key.task_id and key.try_number > 0):
            raise InvalidRequest("dag_id, run_id, task_id and a positive try_number are required")
        if key.map_index < NO_MAP_INDEX:
            raise InvalidRequest(f"map_index {key.map_index} is not an instance: 0, 1, ... or absent (-1, unmapped)")
        try:
            checked = await self.reports.check_queued(key, info.partition, info.lease_epoch)
        except StaleLeaseRefused as e:
            raise StaleLease(str(e)) from None
        except ReportRefused as e:
            raise NotQueued(str(e)) from None
        # A rescheduled sensor's next poke is a process of its own (docs/adr/0006-sensor-reschedule.md).
        key = replace(key, reschedule=checked.reschedule_count)
        if checked.state == "running" or self._backend().is_running(key):
            return False
        snapshot = (
            version_path(self._snapshot_root, info.bundle_version)
            if info.bundle_version
            else (ref.path if (ref := current_snapshot(self._snapshot_root)) else self._snapshot_root)
        )
        config = json.loads(info.executor_config_json) if info.executor_config_json else {}
        env = {str(k): str(v) for k, v in (config.get("env") or {}).items()}
        env.update(self._runner_env)  # the platform's settings win over a task's env
        env.update(
            {
                "SPINNER_RUNNER_TOKEN": self._signer.sign_try(key),
                "PYTHONUNBUFFERED": "1",
            }
        )
        argv = [
            self.runner_python, "-m", "spinner.runner",
            "--executor", self.runner_address,
            "--snapshot", str(snapshot),
            "--fileloc", info.relative_fileloc,
            "--dag-id", key.dag_id,
            "--run-id", key.run_id,
            "--task-id", key.task_id,
            "--try-number", str(key.try_number),
            "--timeout", str(info.execution_timeout),
            "--heartbeat-interval", str(self._heartbeat_interval),
        ]  # fmt: skip
        if key.map_index >= 0:  # an instance of a mapped task (docs/adr/0007); unmapped argv as before
            argv += ["--map-index", str(key.map_index)]
        if key.reschedule:
            argv += ["--reschedules", str(key.reschedule)]
            await asyncio.to_thread(complete_marker(self.log_path(key)).unlink, missing_ok=True)  # the log goes on
        if checked.first_poke_at is not None:
            argv += ["--first-poke-at", checked.first_poke_at.isoformat()]
        try:
            launched = await self._backend().launch(
                LaunchSpec(key=key, argv=argv, env=env, log_path=self.log_path(key), partition=info.partition,
                           executor_config=config)
            )  # fmt: skip
        except LaunchRefused as e:
            # It could never start: the try fails now, with the reason, instead of waiting to be resubmitted.
            log.warning("refused %s: %s", key.describe(), e)
            await self._end(key, Outcome(no_retry=True), f"executor_config refused: {e}", expected=("queued",))
            return False
        except BackendClosed as e:
            raise ShuttingDown(str(e)) from None
        if launched:
            log.info("launched %s", key.describe())
        return launched

    # --- from runners ----------------------------------------------------------------

    def _check(self, key: TryKey, token: str) -> None:
        if not self._signer.verify_try(key, token):
            raise BadToken("the token is not valid for this task try")

    async def start(self, key: TryKey, token: str, hostname: str, pid: int) -> RunContext:
        self._check(key, token)
        try:
            result = await self.reports.start(key, hostname, pid, self.name)
        except ReportRefused as e:
            raise NotQueued(str(e)) from None
        backend = self.backend
        if backend is not None and not backend.is_running(key):
            backend.adopt_started(key, hostname, pid)  # launched by an executor before a restart: watch it now
        if result.moved and result.queued_at is not None:
            waited = (self._clock() - result.queued_at).total_seconds()
            self._queued_to_running.record(max(waited, 0.0), {"backend": self.name})
        return result.context

    async def previous_success(self, key: TryKey, token: str) -> rendered.PreviousSuccess:
        self._check(key, token)
        cached = self._previous.get(key.dag_id, key.run_id)
        if cached is not None:
            return cached
        async with self._sessions() as session:
            found = await rendered.previous_success(session, key.dag_id, key.run_id)
        self._previous.put(key.dag_id, key.run_id, found)
        return found

    async def set_rendered_fields(self, key: TryKey, token: str, fields_json: str) -> None:
        self._check(key, token)
        try:
            canonical = rendered.check_fields_json(fields_json)
            async with transaction(self._sessions) as session:
                await rendered.save_rendered(session, key, canonical, self._clock())
        except rendered.RenderedRefused as e:
            raise InvalidRequest(str(e)) from None

    async def trigger_dag_run(self, key: TryKey, token: str, request: TriggerRequest) -> TriggeredRun:
        """Raises TriggerFailed (services/executor/triggers.py) with the status the runner gets."""
        self._check(key, token)
        return await self.triggers.trigger(key, request)

    async def get_dag_run(self, key: TryKey, token: str, dag_id: str, run_id: str) -> tuple[str, str]:
        self._check(key, token)
        return await self.triggers.get(dag_id, run_id)

    async def heartbeat(self, key: TryKey, token: str) -> bool:
        self._check(key, token)
        async with transaction(self._sessions) as session:
            return await queries.guarded_update(
                session, key, expected_states=("running",), values={"last_heartbeat_at": self._clock()}
            )

    async def finish(
        self,
        key: TryKey,
        token: str,
        outcome: Outcome,
        error: str,
        skip_task_ids: Sequence[str] = (),
        runner: Runner | None = None,
    ) -> str:
        self._check(key, token)
        try:
            to_skip = skips.checked(key, skip_task_ids) if outcome.success else ()
        except skips.BadSkip as e:
            raise InvalidRequest(str(e)) from None
        # A runner whose readiness checks failed reports before it ever started: the try fails from queued.
        failing = not (outcome.success or outcome.skipped or outcome.reschedule_at is not None)
        expected = ("running", "queued") if failing else ("running",)
        return await self._end(key, outcome, error, expected=expected, skip_task_ids=to_skip, runner=runner)

    async def push_xcom(self, key: TryKey, token: str, xcom_key: str, value_json: str) -> None:
        """Writes an XCom of the try's own task instance (the token names it), while the try runs."""
        self._check(key, token)
        try:
            await self.xcoms.push(key, xcom_key, value_json)
        except XComRefused as e:
            raise InvalidRequest(str(e)) from None
        except XComNotRunning as e:
            raise NotQueued(str(e)) from None

    async def pull_xcom(
        self, key: TryKey, token: str, dag_id: str, task_ids: list[str], xcom_key: str, include_prior_dates: bool
    ) -> list[PullItem]:
        self._check(key, token)
        try:
            return await self.xcoms.pull(key, dag_id, task_ids, xcom_key, include_prior_dates)
        except XComRefused as e:
            raise InvalidRequest(str(e)) from None
        except XComNotRunning as e:
            raise NotQueued(str(e)) from None

    async def task_state(self, key: TryKey, token: str, request: queries.StateRequest) -> queries.StateAnswer:
        """Another DAG's task instance or run state, for a sensor of this try (ExternalTaskSensor)."""
        self._check(key, token)
        if not request.dag_id:
            raise InvalidRequest("dag_id is required")
        async with self._sessions() as session:
            return await queries.task_state(session, request)

    async def _end(
        self,
        key: TryKey,
        outcome: Outcome,
        error: str,
        expected: tuple[str, ...],
        skip_task_ids: tuple[str, ...] = (),
        poke: int | None = None,
        runner: Runner | None = None,
    ) -> str:
        try:
            result = await self.reports.end(key, outcome, error, expected, skip_task_ids, poke, runner)
        except ReportRefused as e:
            raise NotQueued(str(e)) from None
        if not result.moved:
            return result.state
        state = result.state
        log.info("%s ended: %s", key.describe(), state)
        self._ended.add(1, {"state": state})
        await self._bus.publish(events.TASK_ENDED, {"dag_id": key.dag_id, "run_id": key.run_id, "state": state})
        return state

    async def run_instantly(self, key: TryKey) -> None:
        """What a runner does, minus the task: Start, then Finish with success (InstantBackend)."""
        if is_callback_task_id(key.task_id):  # a DAG callback: it succeeds at once too
            await self.callbacks.end_instantly(key)
            return
        token = self._signer.sign_try(key)
        await self.start(key, token, "instant", 0)
        await self.finish(key, token, Outcome(success=True), "")

    async def adopt(self) -> list[TryKey]:
        """After a restart: the backend finds the tries it still runs; tries this executor started whose
        pod is gone fail (or retry) with the reason. Returns the adopted tries."""
        backend = self._backend()
        async with self._sessions() as session:
            previous = await queries.running_tries(session, self.name)
        adopted = await backend.start(previous)
        await self.callbacks.adopt(set(backend.running()))  # a callback is never launched twice
        if not backend.adopts:
            return adopted
        alive = set(backend.running())
        lost = [p.key for p in previous if p.key not in alive]
        for key in lost:
            await self.process_exited(key, -1, f"The executor restarted and found no {backend.noun} for this try")
        if adopted or lost:
            log.info("adopted %d running tries; found no %s for %d", len(adopted), backend.noun, len(lost))
        return adopted

    async def process_exited(self, key: TryKey, exit_code: int, reason: str = "", pid: int | None = None) -> None:
        """The runner process ended. If it never reported an end, the try failed (or retries). With a
        pid (a local process), only a try that process started, or that never started, is ended."""
        if is_callback_task_id(key.task_id):
            await self.callbacks.process_exited(key, exit_code, reason)
            return
        path = self.log_path(key)
        known = exit_code != EXIT_UNKNOWN
        code = f"with code {exit_code}" if known else "(its exit code is unknown: a previous executor started it)"

        def close_log() -> None:
            marker = complete_marker(path)
            if marker.exists():  # the runner marked it complete as its last act: not a line more
                return
            if (known and exit_code != 0) or reason or not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a") as f:
                    f.write(f"[spinner] task process exited {code}{': ' + reason if reason else ''}\n")
            marker.touch()

        try:
            await asyncio.to_thread(close_log)
        except OSError as e:
            log.warning("could not close the log of %s: %s", key, e)
        try:
            # Waits a database outage out: a runner that reported success before it exited is recorded so,
            # and one that could not report is failed once the database is back, not left running.
            state = await retrying(
                lambda: self._end(
                    key,
                    Outcome(),
                    reason or f"The task process exited {code} before reporting its end",
                    expected=("queued", "running"),
                    poke=key.reschedule,
                    runner=(socket.gethostname(), pid) if pid is not None else None,
                ),
                what=f"recording the end of {key.describe()}",
                give_up_after=self.retry_timeout,
                log=log,
            )
        except NotQueued:
            return
        if state in ("failed", "up_for_retry"):
            log.warning("%s ended without reporting (exit %s): %s", key.describe(), code, state)
