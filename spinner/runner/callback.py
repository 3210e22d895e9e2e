"""A callback process: runs a DAG's on_success_callback / on_failure_callback, or its missed deadline's
notifier, once, for one run. Launched by the executor through its backend (a local process or a pod).

Like the task runner it never touches the database: it loads the DAG file from the run's bundle
version, builds the context from what the executor handed it (SPINNER_CALLBACK_CONTEXT), speaks
to the executor's RunnerService with a token scoped to this callback (email, FinishCallback), and
its output is the callback's log, shown on the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

import grpc

from spinner.runner import client as runner_client
from spinner.runner.client import RunnerClient, say, with_retries
from spinner.runner.completion import LogEnd
from spinner.tasklog import READINESS_FAILED, READINESS_PASSED, SECTION_START
from spinner.v1 import common_pb2, executor_pb2


class CallbackTimeout(BaseException):  # not an Exception: a callback cannot swallow it
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="spinner.runner.callback")
    p.add_argument("--executor", required=True, help="host:port of the executor's RunnerService")
    p.add_argument("--snapshot", required=True, type=Path, help="the DAG snapshot of the run's bundle version")
    p.add_argument("--fileloc", required=True, help="DAG file, relative to the snapshot")
    p.add_argument("--dag-id", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--kind", required=True, choices=["on_success_callback", "on_failure_callback", "deadline"])
    p.add_argument("--callback-id", required=True, type=int)
    p.add_argument("--timeout", type=float, default=0.0, help="seconds the callbacks may take (0: no limit)")
    args = p.parse_args(argv)
    # The key this process speaks with, in the shape of a try's (spinner/db/callbacks.py).
    args.task_id = f"callback:{args.kind}"
    args.try_number = args.callback_id
    return args


def _when(value: str) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def build_context(dag: Any, args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    """Airflow's names where they apply to a run (no task, no ti)."""
    from spinner.sdk.templating import DagRunInfo

    logical_date = _when(info.get("logical_date", "")) or dt.datetime.now(dt.UTC)
    conf = dict(info.get("conf") or {})
    params = {**dag.params, **{k: v for k, v in conf.items() if k in dag.params}}
    details = dict(info.get("details") or {})
    return {
        "dag": dag,
        "run_id": args.run_id,
        "logical_date": logical_date,
        "data_interval_start": _when(info.get("data_interval_start", "")),
        "data_interval_end": _when(info.get("data_interval_end", "")),
        "ds": logical_date.strftime("%Y-%m-%d"),
        "ts": logical_date.isoformat(),
        "params": params,
        "conf": conf,
        "dag_run": DagRunInfo(dag.dag_id, args.run_id, logical_date, str(info.get("run_type", "")), conf),
        "state": info.get("run_state", ""),
        "reason": details.get("reason", ""),
        "callback": args.kind,
        "deadline": details if args.kind == "deadline" else None,
    }


def callbacks_of(dag: Any, kind: str, details: dict[str, Any]) -> tuple[Any, ...]:
    """What to call: the DAG's callbacks, its deadline's notifier, or a tier default's email."""
    from spinner.sdk.notifiers import EmailNotifier

    if kind in ("on_success_callback", "on_failure_callback"):
        return tuple(getattr(dag, kind, ()))
    deadline = getattr(dag, "deadline", None)
    if deadline is not None and deadline.notifiers:
        return tuple(deadline.notifiers)
    emails = [str(a) for a in details.get("notify") or []]
    if emails:
        return (
            EmailNotifier(
                to=emails,
                subject="Spinner: {{ dag.dag_id }} {{ run_id }} missed its deadline",
                html_content="<p>Run {{ run_id }} of {{ dag.dag_id }} had not ended by {{ deadline.deadline_at }} "
                "({{ deadline.after }} s after {{ deadline.reference }}).</p>",
            ),
        )
    return ()


def _raise_timeout(signum: int, frame: FrameType | None) -> None:
    raise CallbackTimeout()


def main(argv: list[str] | None = None) -> int:
    from spinner.runner.main import log_stream

    args = parse_args(argv)
    stream = log_stream(args)
    log_end = LogEnd.from_environ(os.environ)
    stream.start()
    try:
        return run(args)
    finally:
        try:
            stream.close()
        finally:
            log_end.mark()  # last, as a task's runner does (spinner/runner/completion.py)


def run(args: argparse.Namespace) -> int:
    from spinner.runner.main import readiness
    from spinner.sdk.callbacks import run_callbacks
    from spinner.sdk.loader import dag_import_path, extra_sys_path, load_dags_from_file

    token = os.environ.get("SPINNER_RUNNER_TOKEN", "")
    info: dict[str, Any] = json.loads(os.environ.get("SPINNER_CALLBACK_CONTEXT") or "{}")
    key = common_pb2.TaskTryKey(
        dag_id=args.dag_id, run_id=args.run_id, task_id=args.task_id, try_number=args.try_number
    )
    client = RunnerClient(args.executor, key, token)
    runner_client.install(client)

    def finish(success: bool, error: str = "") -> str:
        request = executor_pb2.FinishCallbackRequest(key=key, token=token, success=success, error=error)
        reply = with_retries(lambda: client.stub.FinishCallback(request, timeout=30), "reporting the end")
        return str(reply.state)

    try:
        dag_file = readiness(args)
    except OSError as e:
        say(f"readiness check failed: {e}")
        print(READINESS_FAILED, flush=True)
        try:
            finish(False, f"Readiness check failed: {e}")
        except grpc.RpcError:
            pass
        return 1
    print(READINESS_PASSED, flush=True)
    print(f"{SECTION_START}task", flush=True)
    signal.signal(signal.SIGALRM, _raise_timeout)
    if args.timeout > 0:
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
    error = ""
    try:
        with extra_sys_path(dag_import_path(args.snapshot)):
            dags = {d.dag_id: d for d in load_dags_from_file(dag_file)}
            if args.dag_id not in dags:
                raise LookupError(f"DAG '{args.dag_id}' is not defined in {args.fileloc}")
            dag = dags[args.dag_id]
            details = dict(info.get("details") or {})
            callbacks = callbacks_of(dag, args.kind, details)
            say(f"{args.kind} of {args.dag_id} run {args.run_id}: {len(callbacks)} to call")
            failed = run_callbacks(callbacks, build_context(dag, args, info), say, args.kind)
            if failed:
                error = f"{failed} of {len(callbacks)} callback(s) failed; see the callback's log"
    except CallbackTimeout:
        error = f"Timed out after {args.timeout:g} s"
        say(error)
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        error = f"{type(e).__name__}: {e}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        state = finish(not error, error)
    except grpc.RpcError as e:
        say(f"could not report the end to the executor: {e}")
        return 1
    say(f"callback {args.callback_id} ended: {state}")
    return 0 if not error else 1


if __name__ == "__main__":
    sys.exit(main())
