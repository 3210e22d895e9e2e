"""DAG callbacks and deadline notifiers: one short-lived callback process per recorded callback, launched
through the executor's backend (a local process, or a pod) as a try is, and notifications (email).

RunCallback (from the owning scheduler) claims the row pending -> running and launches it; the
process reports FinishCallback; a process that ends without reporting fails its row. A callback
that was launched is never launched again: after an executor restart, a running row whose process
is gone fails with the reason (the scheduler records each callback once, in the transaction that
ended the run, so none is lost before it runs).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor import queries as executor_queries
from services.executor.backends.base import BackendClosed, LaunchRefused, LaunchSpec, TryKey
from services.executor.notifications import Email, EmailFailed, InvalidEmail, SmtpMailer
from spinner.db import callbacks as queries
from spinner.db.engine import transaction
from spinner.db.errors import retrying
from spinner.db.models import DagCallback, DagRun
from spinner.logpaths import complete_marker, local_log_path
from spinner.snapshots import current_snapshot, version_path

if TYPE_CHECKING:
    from services.executor.engine import Executor
    from services.executor.tokens import TokenSigner

log = logging.getLogger(__name__)


def callback_key(row: DagCallback) -> TryKey:
    return TryKey(row.dag_id, row.run_id, queries.callback_task_id(row.kind), row.id)


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


def callback_context(row: DagCallback, run: DagRun | None) -> dict[str, object]:
    """What the callback process builds its context from (it never reads the database)."""
    return {
        "kind": row.kind,
        "callback_id": row.id,
        "run_state": run.state if run else "",
        "run_type": run.run_type if run else "",
        "logical_date": _iso(run.logical_date) if run else "",
        "data_interval_start": _iso(run.data_interval_start) if run else "",
        "data_interval_end": _iso(run.data_interval_end) if run else "",
        "queued_at": _iso(run.created_at) if run else "",
        "start_date": _iso(run.start_date) if run else "",
        "end_date": _iso(run.end_date) if run else "",
        "conf": run.conf if run else {},
        "details": row.details or {},
    }


class CallbackRunner:
    def __init__(
        self,
        executor: Executor,
        *,
        sessions: async_sessionmaker[AsyncSession],
        signer: TokenSigner,
        snapshot_root: Path,
        log_dir: Path,
        runner_env: dict[str, str],
        clock: Callable[[], dt.datetime],
        timeout: float = 300.0,
    ) -> None:
        self._executor = executor  # its backend, runner address and interpreter, attached after start-up
        self._sessions = sessions
        self._signer = signer
        self._snapshot_root = snapshot_root
        self._log_dir = log_dir
        self._runner_env = runner_env
        self._clock = clock
        self.timeout = timeout
        self.mailer: SmtpMailer | None = None

    def _check(self, key: TryKey, token: str) -> None:
        from services.executor.engine import BadToken

        if not self._signer.verify_try(key, token):
            raise BadToken("the token is not valid for this task try or callback")

    # --- from schedulers -------------------------------------------------------------

    async def run(self, callback_id: int, partition: str, lease_epoch: int) -> bool:
        """Launches the callback's process if the row is pending; True when this call launched it."""
        from services.executor.engine import InvalidRequest, NotQueued, ShuttingDown, StaleLease

        if callback_id <= 0 or not partition:
            raise InvalidRequest("callback_id and partition are required")
        ex = self._executor
        now = self._clock()
        async with transaction(self._sessions) as session:
            epoch = await executor_queries.lease_epoch(session, partition)
            if epoch is not None and lease_epoch < epoch:
                raise StaleLease(f"lease epoch {lease_epoch} of {partition} is stale (now {epoch})")
            row = await queries.get(session, callback_id)
            if row is None or row.partition != partition:
                raise NotQueued(f"callback {callback_id} is not one of partition {partition}")
            if row.state != "pending":
                return False
            claim = {"state": "running", "started_at": now, "executor": ex.name}
            if not await queries.move(session, row.id, expected=("pending",), values=claim):
                return False  # another RunCallback claimed it first
            run = await executor_queries.get_run(session, row.dag_id, row.run_id)
            context = callback_context(row, run)
            key = callback_key(row)
            bundle_version, fileloc = row.bundle_version, row.fileloc
        snapshot = (
            version_path(self._snapshot_root, bundle_version)
            if bundle_version
            else (ref.path if (ref := current_snapshot(self._snapshot_root)) else self._snapshot_root)
        )
        env = dict(self._runner_env)
        env.update(
            {
                "SPINNER_RUNNER_TOKEN": self._signer.sign_try(key),
                "SPINNER_CALLBACK_CONTEXT": json.dumps(context, default=str),
                "PYTHONUNBUFFERED": "1",
            }
        )
        argv = [
            ex.runner_python, "-m", "spinner.runner.callback",
            "--executor", ex.runner_address,
            "--snapshot", str(snapshot),
            "--fileloc", fileloc,
            "--dag-id", key.dag_id,
            "--run-id", key.run_id,
            "--kind", queries.kind_of(key.task_id),
            "--callback-id", str(key.try_number),
            "--timeout", str(self.timeout),
        ]  # fmt: skip
        backend = ex.backend
        if backend is None:
            raise RuntimeError("executor backend not attached")
        try:
            launched = await backend.launch(
                LaunchSpec(key=key, argv=argv, env=env, log_path=self.log_path(key), partition=partition)
            )
        except (LaunchRefused, OSError) as e:
            await self._end(key, False, f"the callback process could not start: {e}")
            return False
        except BackendClosed as e:
            # Not launched: back to pending, so the scheduler hands it over again (to this executor restarted).
            async with transaction(self._sessions) as session:
                await queries.move(session, key.try_number, expected=("running",), values={"state": "pending"})
            raise ShuttingDown(str(e)) from None
        log.info("launched callback %d (%s) of %s %s", key.try_number, key.task_id, key.dag_id, key.run_id)
        return launched

    def log_path(self, key: TryKey) -> Path:
        return local_log_path(self._log_dir, key.dag_id, key.run_id, key.task_id, key.try_number)

    # --- from callback processes -----------------------------------------------------

    async def finish(self, key: TryKey, token: str, success: bool, error: str) -> str:
        from services.executor.engine import InvalidRequest, NotQueued

        if not queries.is_callback_task_id(key.task_id):
            raise InvalidRequest("FinishCallback is for callback processes (task_id callback:<kind>)")
        self._check(key, token)
        state = await self._end(key, success, error)
        if state is None:
            raise NotQueued(f"callback {key.try_number} of {key.dag_id} {key.run_id} does not exist")
        return state

    async def _end(self, key: TryKey, success: bool, error: str) -> str | None:
        """running -> success | failed (guarded); the row's state as it is after the call."""
        state = "success" if success else "failed"
        async with transaction(self._sessions) as session:
            moved = await queries.move(
                session, key.try_number, expected=("running",), dag_id=key.dag_id, run_id=key.run_id,
                values={"state": state, "ended_at": self._clock(), "error": error[:10000]},
            )  # fmt: skip
            row = await queries.get(session, key.try_number)
        if moved:
            log.info("callback %d of %s %s ended: %s", key.try_number, key.dag_id, key.run_id, state)
        return row.state if row is not None and row.dag_id == key.dag_id else None

    async def end_instantly(self, key: TryKey) -> None:
        """InstantBackend (benchmarks): the callback succeeds without a process."""
        await self._end(key, True, "")

    async def process_exited(self, key: TryKey, exit_code: int, reason: str = "") -> None:
        path = self.log_path(key)

        def close_log() -> None:
            marker = complete_marker(path)
            if marker.exists():  # the runner marked it complete as its last act: not a line more
                return
            if exit_code != 0 or reason or not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a") as f:
                    f.write(
                        f"[spinner] callback process exited with code {exit_code}{': ' + reason if reason else ''}\n"
                    )
            marker.touch()

        try:
            await asyncio.to_thread(close_log)
        except OSError as e:
            log.warning("could not close the log of callback %s: %s", key, e)
        error = reason or f"The callback process exited with code {exit_code} before reporting its end"
        await retrying(
            lambda: self._end(key, False, error),
            what=f"recording the end of callback {key.try_number}",
            give_up_after=self._executor.retry_timeout,
            log=log,
        )

    async def adopt(self, alive: set[TryKey]) -> None:
        """After a restart: callbacks this executor launched whose process is gone fail (never run twice)."""
        async with self._sessions() as session:
            rows = await queries.running_of(session, self._executor.name)
        for row in rows:
            key = callback_key(row)
            if key not in alive:
                await self._end(key, False, "The executor restarted and found no process for this callback")

    # --- notifications ---------------------------------------------------------------

    async def send_email(self, key: TryKey, token: str, email: Email) -> str:
        """For a task try or a callback process (its token); the executor's SMTP settings send it."""
        from services.executor.engine import InvalidRequest, NotConfigured

        self._check(key, token)
        if self.mailer is None:
            raise NotConfigured("no SMTP server is configured for this executor (SPINNER_SMTP_HOST): email is off")
        instance = f"[{key.map_index}]" if key.map_index >= 0 else ""
        who = f"{key.dag_id} {key.run_id} {key.task_id}{instance} #{key.try_number}"
        try:
            return await self.mailer.send(email, sent_for=who)
        except InvalidEmail as e:
            raise InvalidRequest(str(e)) from None
        except EmailFailed as e:
            raise NotConfigured(str(e)) from None
