"""Runs one task try: readiness checks, load the DAG, render templates, execute, report.

An instance of a mapped task (`--map-index N`, docs/adr/0007-dynamic-task-mapping.md) gets its own
items in place of the task's mapped arguments before its fields are rendered; an input it cannot
map over (an upstream value that is not a list or dict, an index past its end) fails the try
without retries, with the reason in its log and its error.

The log it writes to stdout has two sections, marked for the logs service and UI:
`readiness` (folded when it passed) and `task`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import grpc

from spinner.bundles import ensure_snapshot
from spinner.mapping import NO_MAP_INDEX
from spinner.runner import client as runner_client
from spinner.runner.client import RETRYABLE, RunnerClient, say, with_retries
from spinner.runner.completion import LogEnd
from spinner.runner.keeper import runner_pid
from spinner.runner.logstream import LogStream
from spinner.runner.masking import redact
from spinner.runner.task_callbacks import TaskCallbacks
from spinner.sdk.exceptions import FailNoRetry
from spinner.tasklog import READINESS_FAILED, READINESS_PASSED, SECTION_START
from spinner.v1 import common_pb2, executor_pb2

if TYPE_CHECKING:
    from spinner.sdk.operators.base import BaseOperator


class MappedInputError(FailNoRetry):
    """A mapped task's instance cannot get its items: the try fails, without retries, saying why."""


class TaskTimeout(Exception):
    pass


class TaskKilled(Exception):
    pass


def instance_name(args: argparse.Namespace) -> str:
    """`dag.task`, or `dag.task[i]` for an instance of a mapped task."""
    instance = f"[{args.map_index}]" if args.map_index >= 0 else ""
    return f"{args.dag_id}.{args.task_id}{instance}"


def materialize_instance(task: BaseOperator, context: dict[str, Any], map_index: int) -> None:
    """Puts instance `map_index`'s items in place of a mapped task's placeholders (before rendering).

    Raises MappedInputError (a failure without retry: the inputs will not change by trying again)
    when the instance cannot get its items, or when the DAG file and the try disagree on whether
    the task is mapped (the file changed since the run was expanded)."""
    from spinner.sdk.mapping import materialize

    if not task.is_mapped:
        if map_index >= 0:
            raise MappedInputError(
                f"task '{task.task_id}' runs as instance {map_index} of a mapped task, but the DAG file does not "
                "map it (.partial(...).expand(...)); was the file changed after the run was expanded?"
            )
        return
    if map_index < 0:
        raise MappedInputError(
            f"task '{task.task_id}' is mapped, but this try is not one of its instances (no map_index): "
            "the scheduler runs a mapped task's instances, each with its map_index"
        )
    try:
        materialize(task, context)
    except (TypeError, ValueError, LookupError) as e:
        raise MappedInputError(f"mapped task '{task.task_id}', instance {map_index}: {e}") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="spinner.runner")
    p.add_argument("--executor", required=True, help="host:port of the executor's RunnerService")
    p.add_argument("--snapshot", required=True, type=Path, help="the DAG snapshot directory to use")
    p.add_argument("--fileloc", required=True, help="DAG file, relative to the snapshot")
    p.add_argument("--dag-id", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--task-id", required=True)
    p.add_argument("--try-number", required=True, type=int)
    p.add_argument("--map-index", type=int, default=NO_MAP_INDEX, help="the instance of a mapped task (-1: unmapped)")
    p.add_argument("--timeout", type=float, default=0.0, help="execution timeout in seconds (0: none)")
    p.add_argument("--heartbeat-interval", type=float, default=float(os.environ.get("SPINNER_HEARTBEAT", "5")))
    # A sensor's try across reschedules (docs/adr/0006): this process's poke number, the first poke's time.
    p.add_argument("--reschedules", type=int, default=0)
    p.add_argument("--first-poke-at", default="")
    return p.parse_args(argv)


class Heartbeater(threading.Thread):
    """Heartbeats from a thread; when the executor says stop, the task gets SIGTERM."""

    def __init__(self, beat: Callable[[], bool], interval: float) -> None:
        super().__init__(daemon=True, name="heartbeat")
        self._beat = beat
        self._interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                if not self._beat():
                    if self._stop_event.is_set():
                        # The task ended while this beat was in flight and its Finish made the try no longer
                        # running: the answer is about the report, not an order to stop (the runner would
                        # kill itself before its callbacks, its log's end and its archive).
                        return
                    say("the executor says this try should no longer run; stopping the task")
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
            except grpc.RpcError as e:
                say(f"heartbeat failed: {e.code() if hasattr(e, 'code') else e}")

    def stop(self) -> None:
        self._stop_event.set()


def _raise_timeout(signum: int, frame: FrameType | None) -> None:
    raise TaskTimeout()


def _raise_killed(signum: int, frame: FrameType | None) -> None:
    raise TaskKilled()


def readiness(args: argparse.Namespace) -> Path:
    print(f"{SECTION_START}readiness", flush=True)
    map_index = int(getattr(args, "map_index", NO_MAP_INDEX))  # a DAG callback's process (callback.py) has none
    instance = f", map_index {map_index}" if map_index >= 0 else ""
    say(f"host {socket.gethostname()}, pid {os.getpid()}, try {args.try_number}{instance}")
    args.snapshot = ensure_snapshot(args.snapshot, str(args.fileloc), say)  # not on this host: fetched from S3
    if not args.snapshot.is_dir():
        raise FileNotFoundError(f"DAG snapshot {args.snapshot} is not on this host")
    say(f"DAG snapshot {args.snapshot.name} present")
    snapshot: Path = args.snapshot
    # Checked on the resolved paths, opened on the given one: a kept runner's snapshot is a view
    # (/proc/self/fd/N, spinner/runner/keeper.py) whose real path the DAG user may not walk.
    dag_file = snapshot / str(args.fileloc)
    if not dag_file.resolve().is_relative_to(snapshot.resolve()) or not dag_file.is_file():
        raise FileNotFoundError(f"DAG file {args.fileloc} is not in snapshot {args.snapshot.name}")
    say(f"DAG file {args.fileloc} present")
    requirements = os.environ.get("SPINNER_REQUIREMENTS", "")
    if requirements:
        install_requirements(snapshot, requirements)
    return dag_file


def install_requirements(snapshot: Path, rel: str) -> None:
    """executor_config requirements: installed into a folder of this try's own, put first on sys.path."""
    import hashlib
    import subprocess
    import tempfile

    file = (snapshot / rel).resolve()
    if not file.is_relative_to(snapshot.resolve()) or not file.is_file():
        raise FileNotFoundError(f"requirements file {rel} is not in snapshot {snapshot.name}")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"spinner-requirements-{digest}"
    if not (target / ".complete").exists():
        say(f"installing {rel} into {target}")
        cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
               "--target", str(target), "-r", str(file)]  # fmt: skip
        done = subprocess.run(cmd, cwd=file.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.stdout:
            print(done.stdout, end="" if done.stdout.endswith("\n") else "\n", flush=True)
        if done.returncode != 0:
            raise OSError(f"installing {rel} failed (pip exit code {done.returncode})")
        (target / ".complete").touch()
    else:
        say(f"requirements {rel} already installed in {target}")
    sys.path.insert(0, str(target))


def run_task(
    args: argparse.Namespace, dag_file: Path, start: executor_pb2.RunnerStartResponse, hooks: TaskCallbacks
) -> Any:
    from spinner.runner.rendered import previous_success, render_and_report
    from spinner.sdk.loader import dag_import_path, extra_sys_path, load_dags_from_file
    from spinner.sdk.operators.sensors.base import sensor_try
    from spinner.sdk.templating import build_context
    from spinner.sdk.xcom import push_result

    with extra_sys_path(dag_import_path(args.snapshot)):
        dags = {d.dag_id: d for d in load_dags_from_file(dag_file)}
        if args.dag_id not in dags:
            raise LookupError(f"DAG '{args.dag_id}' is not defined in {args.fileloc}")
        dag = dags[args.dag_id]
        task = dag.get_task(args.task_id)

        def when(value: str) -> dt.datetime:
            return dt.datetime.fromisoformat(value)

        context = build_context(
            dag,
            task,
            run_id=args.run_id,
            logical_date=when(start.logical_date),
            data_interval_start=when(start.data_interval_start or start.logical_date),
            data_interval_end=when(start.data_interval_end or start.logical_date),
            conf=json.loads(start.conf_json or "{}"),
            try_number=args.try_number,
            run_type=start.run_type,
            previous=previous_success(start),
            map_index=args.map_index,
        )
        context["sensor_try"] = sensor_try(args.reschedules, args.first_poke_at)
        materialize_instance(task, context, args.map_index)
        render_and_report(task, context, args.snapshot)
        hooks.loaded(task, context)
        hooks.executing()
        say(f"running {type(task).__name__} {instance_name(args)}")
        result = task.execute(context)
        push_result(task, context["ti"], result)  # the return value becomes the XCom return_value
        return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stream = log_stream(args)
    log_end = LogEnd.from_environ(os.environ)
    stream.start()
    try:
        return run(args, log_end)
    finally:
        try:
            stream.close()
        finally:
            log_end.mark()  # last: every line of the task and its children is in the file


def log_stream(args: argparse.Namespace) -> LogStream:
    """Shipping to Elasticsearch and archiving to S3, as the executor's environment says (none: stdout only)."""
    from pydantic import ValidationError

    from spinner.config import LogStoreSettings
    from spinner.tasklog import LogId

    log_id = LogId(
        dag_id=args.dag_id, task_id=args.task_id, run_id=args.run_id, try_number=args.try_number,
        map_index=int(getattr(args, "map_index", NO_MAP_INDEX)),  # a DAG callback's process (callback.py) has none
    )  # fmt: skip
    try:
        settings = LogStoreSettings()
    except ValidationError as e:
        say(f"log shipping and archiving are off: bad settings: {e}")
        settings = LogStoreSettings.model_construct()
    return LogStream(log_id, settings, say)


def run(args: argparse.Namespace, log_end: LogEnd | None = None) -> int:
    from spinner.sdk import skipping
    from spinner.sdk.exceptions import RescheduleTask, SkipTask

    token = os.environ.get("SPINNER_RUNNER_TOKEN", "")
    key = common_pb2.TaskTryKey(
        dag_id=args.dag_id, run_id=args.run_id, task_id=args.task_id, try_number=args.try_number
    )
    if args.map_index >= 0:  # every report and call names the instance (absent: an unmapped task's -1)
        key.map_index = args.map_index
    client = RunnerClient(args.executor, key, token)
    runner_client.install(client)
    stub = client.stub

    def finish(
        outcome: executor_pb2.TaskOutcome,
        error: str = "",
        skip_task_ids: list[str] | None = None,
        reschedule_at: str = "",
        timeout: float | None = None,
    ) -> str:
        request = executor_pb2.RunnerFinishRequest(
            key=key,
            token=token,
            outcome=outcome,
            error=redact(error),
            skip_task_ids=skip_task_ids or [],
            reschedule_at=reschedule_at,
            hostname=socket.gethostname(),
            pid=runner_pid(),
        )
        response = with_retries(lambda: stub.Finish(request, timeout=30), "reporting the end", timeout)
        return str(response.state)

    def readiness_failed(detail: str) -> int:
        say(f"readiness check failed: {detail}")
        print(READINESS_FAILED, flush=True)
        try:  # briefly: when this cannot be reported, the executor records the process's end
            finish(executor_pb2.TASK_OUTCOME_FAILED, f"Readiness check failed: {detail}", timeout=30)
        except grpc.RpcError:
            pass
        return 1

    try:
        dag_file = readiness(args)
        start_request = executor_pb2.RunnerStartRequest(
            key=key, token=token, hostname=socket.gethostname(), pid=runner_pid()
        )
        start = with_retries(lambda: stub.Start(start_request, timeout=30), "starting")
        say(f"executor at {args.executor} reachable; try {args.try_number} is running")
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else None
        if code in RETRYABLE:
            return readiness_failed(e.details() if hasattr(e, "details") else str(e))
        # Refused: the try is not this runner's to run (it ended, moved on, or another runner of it
        # started first). Reporting a failure would end a try this runner does not own.
        say(f"the executor refused the start: {e.details() if hasattr(e, 'details') else e}; not running the task")
        print(READINESS_FAILED, flush=True)
        if log_end is not None:
            log_end.not_ours()
        return 1
    except OSError as e:
        return readiness_failed(str(e))
    print(READINESS_PASSED, flush=True)
    print(f"{SECTION_START}task", flush=True)

    heartbeater = Heartbeater(
        lambda: bool(
            stub.Heartbeat(executor_pb2.RunnerHeartbeatRequest(key=key, token=token), timeout=10).keep_running
        ),
        args.heartbeat_interval,
    )
    heartbeater.start()
    signal.signal(signal.SIGTERM, _raise_killed)
    signal.signal(signal.SIGALRM, _raise_timeout)
    if args.timeout > 0:
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
    outcome: executor_pb2.TaskOutcome = executor_pb2.TASK_OUTCOME_FAILED
    error = reschedule_at = ""
    skips: list[str] = []  # what a branch or short circuit skips (spinner/sdk/skipping.py), sent with a success
    hooks = TaskCallbacks(say)
    exception: BaseException | None = None
    try:
        result = run_task(args, dag_file, start, hooks)
        signal.setitimer(signal.ITIMER_REAL, 0)
        if result is not None:
            say(f"returned: {str(result)[:1000]}")
        outcome = executor_pb2.TASK_OUTCOME_SUCCESS
        skips = skipping.take_requested()
    except RescheduleTask as e:
        outcome, reschedule_at = executor_pb2.TASK_OUTCOME_RESCHEDULE, e.reschedule_at.isoformat()
        say(f"not yet: this process ends and the sensor pokes again at {reschedule_at}")
    except SkipTask as e:
        outcome, error = executor_pb2.TASK_OUTCOME_SKIPPED, str(e)
        say(f"task skipped: {e}")
    except FailNoRetry as e:
        outcome, error = executor_pb2.TASK_OUTCOME_FAILED_NO_RETRY, str(e)
        say(f"task failed without retry: {e}")
    except TaskTimeout:
        error = f"Timed out after {args.timeout:g} s (execution_timeout)"
        say(error)
    except TaskKilled:
        error = "Killed: the task was stopped (SIGTERM)"
        say(error)
    except BaseException as e:
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        error = f"{type(e).__name__}: {e}"
        exception = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        heartbeater.stop()
    try:
        state = finish(outcome, error, skips, reschedule_at)
    except grpc.RpcError as e:
        say(f"could not report the end to the executor: {e}")
        return 1
    if log_end is not None:
        log_end.answered(state)  # a sensor rescheduled: its next poke goes on in this log
    say(f"try {args.try_number} ended: {state}")
    hooks.ended(state, error, exception)  # callbacks and emails: logged here, the state stays as recorded
    ok = (executor_pb2.TASK_OUTCOME_SUCCESS, executor_pb2.TASK_OUTCOME_SKIPPED, executor_pb2.TASK_OUTCOME_RESCHEDULE)
    return 0 if outcome in ok else 1
