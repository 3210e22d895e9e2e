"""Commands that talk to the gateway's REST API: dags, runs, tasks.

Failures exit non-zero with one line on stderr ("error: ..."), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any
from urllib.parse import quote

import httpx

from spinner.cli import push

TERMINAL = ("success", "failed")


class CliError(Exception):
    pass


def _server(args: argparse.Namespace) -> str:
    return str(args.server or os.environ.get("SPINNER_SERVER") or "http://127.0.0.1:8080").rstrip("/")


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    url = _server(args) + "/api/v1" + path
    try:
        response = httpx.request(method, url, timeout=30, **kwargs)
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach the gateway at {_server(args)} ({type(e).__name__}: {e})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        raise CliError(message or f"the gateway answered {response.status_code} for {method} {path}")
    if not isinstance(body, dict):
        raise CliError(f"{_server(args)} did not answer like a Spinner gateway (no JSON for {method} {path})")
    return body


def _q(value: str) -> str:
    return quote(value, safe="")


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def dags_list(args: argparse.Namespace) -> int:
    body = _request(args, "GET", "/dags", params={"limit": args.limit})
    rows = [
        [d["dag_id"], d["partition"], str(d["tier"]), d["schedule"] or "None", "yes" if d["is_paused"] else "no"]
        for d in body["dags"]
    ]
    print(_table(rows, ["dag_id", "partition", "tier", "schedule", "paused"]))
    if body["total"] > len(rows):
        print(f"({len(rows)} of {body['total']} DAGs; use --limit)")
    return 0


def _conf(raw: str) -> dict[str, Any]:
    try:
        conf = json.loads(raw)
    except ValueError as e:
        raise CliError(f"--conf is not valid JSON: {e}") from None
    if not isinstance(conf, dict):
        raise CliError('--conf must be a JSON object, like \'{"key": "value"}\'')
    return conf


def dags_trigger(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {}
    if args.conf is not None:
        payload["conf"] = _conf(args.conf)
    if args.run_id:
        payload["run_id"] = args.run_id
    run = _request(args, "POST", f"/dags/{_q(args.dag_id)}/runs", json=payload)
    run_id = run["run_id"]
    print(f"triggered {args.dag_id} run {run_id}")
    if not args.wait:
        return 0
    return _wait(args, args.dag_id, run_id)


def _wait(args: argparse.Namespace, dag_id: str, run_id: str) -> int:
    deadline = time.monotonic() + args.timeout
    seen: dict[str, str] = {}
    path = f"/dags/{_q(dag_id)}/runs/{_q(run_id)}"
    while True:
        tis = _request(args, "GET", path + "/tasks")["task_instances"]
        for ti in tis:
            state = ti["state"] or "none"
            if seen.get(ti["task_id"]) != state:
                seen[ti["task_id"]] = state
                tries = f" (try {ti['try_number']})" if ti["try_number"] > 1 else ""
                print(f"  {ti['task_id']}: {state}{tries}", flush=True)
        run = _request(args, "GET", path)
        if run["state"] in TERMINAL:
            if run["state"] == "success":
                print(f"run {run_id} succeeded")
                return 0
            failed = sorted(t["task_id"] for t in tis if t["state"] in ("failed", "upstream_failed"))
            raise CliError(f"run {run_id} failed: task(s) {', '.join(failed) or '?'} failed")
        if time.monotonic() > deadline:
            raise CliError(f"run {run_id} is still {run['state']} after {args.timeout:g} s")
        time.sleep(0.5)


def dags_pause(args: argparse.Namespace) -> int:
    paused = args.dags_command == "pause"
    dag = _request(args, "PATCH", f"/dags/{_q(args.dag_id)}", json={"is_paused": paused})
    print(f"{dag['dag_id']} is {'paused' if dag['is_paused'] else 'active'}")
    return 0


def dags_backfill(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"start": args.start, "end": args.end}
    if args.conf is not None:
        payload["conf"] = _conf(args.conf)
    result = _request(args, "POST", f"/dags/{_q(args.dag_id)}/backfill", json=payload)
    run_ids: list[str] = result["run_ids"]
    print(f"backfill of {args.dag_id}: {len(run_ids)} run(s) created, {result['skipped_existing']} already existed")
    if not args.wait or not run_ids:
        return 0
    deadline = time.monotonic() + args.timeout
    pending = set(run_ids)
    failed: list[str] = []
    last = ""
    while pending:
        runs = _request(args, "GET", f"/dags/{_q(args.dag_id)}/runs", params={"limit": 1000})["runs"]
        states = {r["run_id"]: r["state"] for r in runs if r["run_id"] in pending}
        for run_id, state in states.items():
            if state in TERMINAL:
                pending.discard(run_id)
                if state == "failed":
                    failed.append(run_id)
        done = len(run_ids) - len(pending)
        line = f"  {done}/{len(run_ids)} runs done ({len(failed)} failed)"
        if line != last:
            print(line, flush=True)
            last = line
        if pending and time.monotonic() > deadline:
            raise CliError(f"backfill still has {len(pending)} run(s) going after {args.timeout:g} s")
        if pending:
            time.sleep(0.5)
    if failed:
        raise CliError(f"backfill finished with {len(failed)} failed run(s): {', '.join(sorted(failed)[:5])}")
    return 0


def _selection(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "task_ids": args.task or [],
        "include_upstream": args.upstream,
        "include_downstream": args.downstream,
    }


def tasks_clear(args: argparse.Namespace) -> int:
    body = {**_selection(args), "only_failed": args.only_failed}
    path = f"/dags/{_q(args.dag_id)}/runs/{_q(args.run_id)}/clear"
    cleared = _request(args, "POST", path, json=body)["task_ids"]
    print(f"cleared {len(cleared)} task instance(s): {', '.join(cleared) or '-'}")
    return 0


def tasks_mark(args: argparse.Namespace) -> int:
    body = {**_selection(args), "state": args.state}
    path = f"/dags/{_q(args.dag_id)}/runs/{_q(args.run_id)}/mark"
    marked = _request(args, "POST", path, json=body)["task_ids"]
    print(f"marked {len(marked)} task instance(s) {args.state}: {', '.join(marked) or '-'}")
    return 0


def pools_list(args: argparse.Namespace) -> int:
    pools = _request(args, "GET", "/pools")["pools"]
    rows = [[p["name"], str(p["slots"]), str(p["used"]), p["description"]] for p in pools]
    print(_table(rows, ["pool", "slots", "used", "description"]))
    return 0


def pools_set(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"slots": args.slots}
    if args.description is not None:
        body["description"] = args.description
    pool = _request(args, "PUT", f"/pools/{_q(args.name)}", json=body)
    print(f"pool {pool['name']}: {pool['slots']} slots ({pool['used']} in use)")
    return 0


def runs_list(args: argparse.Namespace) -> int:
    runs = _request(args, "GET", f"/dags/{_q(args.dag_id)}/runs", params={"limit": args.limit})["runs"]
    rows = [[r["run_id"], r["state"], r["run_type"], r["logical_date"] or "", r["end_date"] or ""] for r in runs]
    print(_table(rows, ["run_id", "state", "type", "logical_date", "ended"]))
    return 0


def tasks_logs(args: argparse.Namespace) -> int:
    path = f"/dags/{_q(args.dag_id)}/runs/{_q(args.run_id)}/tasks/{_q(args.task_id)}/logs"
    offset = 0
    try_number = args.try_number
    while True:
        params: dict[str, Any] = {"offset": offset}
        if try_number is not None:
            params["try_number"] = try_number
        chunk = _request(args, "GET", path, params=params)
        # Later reads stay on the try the first one found, even if a retry starts meanwhile.
        try_number = chunk["try_number"]
        for line in chunk["lines"]:
            print(line, flush=True)
        offset = chunk["next_offset"]
        if chunk["complete"] or (not args.follow and not chunk["lines"]):
            return 0
        if not chunk["lines"]:
            time.sleep(0.5)


def _guard(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            result: int = handler(args)
            return result
        except CliError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1

    return run


def register(sub: Any) -> None:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--server", help="gateway URL (default $SPINNER_SERVER or http://127.0.0.1:8080)")

    dags = sub.add_parser("dags", help="list and trigger DAGs").add_subparsers(dest="dags_command", required=True)
    p = dags.add_parser("list", parents=[server], help="list DAGs")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(handler=_guard(dags_list))
    p = dags.add_parser("trigger", parents=[server], help="start a run of a DAG")
    p.add_argument("dag_id")
    p.add_argument("--conf", help="run configuration as a JSON object")
    p.add_argument("--run-id", help="run id (default manual__<time>)")
    p.add_argument("--wait", action="store_true", help="follow the run until it ends; exit 1 if it fails")
    p.add_argument("--timeout", type=float, default=3600, help="with --wait: give up after this many seconds")
    p.set_defaults(handler=_guard(dags_trigger))

    for name in ("pause", "unpause"):
        p = dags.add_parser(name, parents=[server], help=f"{name} a DAG's scheduling")
        p.add_argument("dag_id")
        p.set_defaults(handler=_guard(dags_pause))
    p = dags.add_parser("backfill", parents=[server], help="create runs for past intervals")
    p.add_argument("dag_id")
    p.add_argument("--start", required=True, help="first logical date (ISO 8601)")
    p.add_argument("--end", required=True, help="last logical date (ISO 8601), inclusive")
    p.add_argument("--conf", help="run configuration as a JSON object")
    p.add_argument("--wait", action="store_true", help="show progress until every run has ended")
    p.add_argument("--timeout", type=float, default=24 * 3600)
    p.set_defaults(handler=_guard(dags_backfill))
    push.register(dags)

    pools = sub.add_parser("pools", help="slots shared by tasks").add_subparsers(dest="pools_command", required=True)
    p = pools.add_parser("list", parents=[server], help="pools and their use")
    p.set_defaults(handler=_guard(pools_list))
    p = pools.add_parser("set", parents=[server], help="create a pool or change its slots")
    p.add_argument("name")
    p.add_argument("slots", type=int)
    p.add_argument("--description")
    p.set_defaults(handler=_guard(pools_set))

    runs = sub.add_parser("runs", help="DAG runs").add_subparsers(dest="runs_command", required=True)
    p = runs.add_parser("list", parents=[server], help="recent runs of a DAG")
    p.add_argument("dag_id")
    p.add_argument("--limit", type=int, default=25)
    p.set_defaults(handler=_guard(runs_list))

    tasks = sub.add_parser("tasks", help="task instances").add_subparsers(dest="tasks_command", required=True)
    p = tasks.add_parser("logs", parents=[server], help="print a task try's log")
    p.add_argument("dag_id")
    p.add_argument("run_id")
    p.add_argument("task_id")
    p.add_argument("--try", dest="try_number", type=int, help="try number (default: the latest)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the try ends")
    p.set_defaults(handler=_guard(tasks_logs))

    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("dag_id")
    selection.add_argument("run_id")
    selection.add_argument("--task", "-t", action="append", help="a task id (repeat; default: every task)")
    selection.add_argument("--upstream", action="store_true", help="also the tasks upstream of those")
    selection.add_argument("--downstream", action="store_true", help="also the tasks downstream of those")
    p = tasks.add_parser("clear", parents=[server, selection], help="run task instances again")
    p.add_argument("--only-failed", action="store_true", help="only failed and upstream_failed ones")
    p.set_defaults(handler=_guard(tasks_clear))
    p = tasks.add_parser("mark", parents=[server, selection], help="set task instances to success or failed")
    p.add_argument("--state", required=True, choices=["success", "failed"])
    p.set_defaults(handler=_guard(tasks_mark))
