"""Commands that talk to the gateway's REST API: dags, runs, tasks.

Failures exit non-zero with one line on stderr ("error: ..."), never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from typing import Any
from urllib.parse import quote

import httpx

from spinner import credentials
from spinner.cli import push

TERMINAL = ("success", "failed")
MAP_INDEX_HELP = "which instance of a mapped task (0, 1, ...; default: the unmapped task)"


class CliError(Exception):
    pass


def _server(args: argparse.Namespace) -> str:
    return str(args.server or os.environ.get("SPINNER_SERVER") or "http://127.0.0.1:8080").rstrip("/")


def _token(args: argparse.Namespace) -> str | None:
    """--token, else $SPINNER_TOKEN, else what `spinner login` or `spinner standalone` stored for this server."""
    return getattr(args, "token", None) or os.environ.get("SPINNER_TOKEN") or credentials.token_for(_server(args))


def _request(args: argparse.Namespace, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
    url = _server(args) + "/api/v1" + path
    token = _token(args) if auth else None
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, timeout=30, headers=headers, **kwargs)
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach the gateway at {_server(args)} ({type(e).__name__}: {e})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 204:
        return {}
    if response.status_code >= 400:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        if response.status_code == 401 and not token:
            message = f"{message}; run `spinner login --server {_server(args)}` or pass --token"
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


def _progress(tis: list[dict[str, Any]]) -> dict[str, str]:
    """What `--wait` prints per task: its state (and try); for a mapped task, its instances' states counted."""
    out: dict[str, str] = {}
    instances: dict[str, list[str]] = {}
    for ti in tis:
        state = ti["state"] or "none"
        if ti.get("map_index", -1) >= 0:
            instances.setdefault(ti["task_id"], []).append(state)
        else:
            out[ti["task_id"]] = state + (f" (try {ti['try_number']})" if ti["try_number"] > 1 else "")
    for task_id, states in instances.items():
        counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states), key=states.index))
        out[f"{task_id} [{len(states)}]"] = counts
    return out


def _wait(args: argparse.Namespace, dag_id: str, run_id: str) -> int:
    deadline = time.monotonic() + args.timeout
    seen: dict[str, str] = {}
    path = f"/dags/{_q(dag_id)}/runs/{_q(run_id)}"
    while True:
        tis = _request(args, "GET", path + "/tasks")["task_instances"]
        for name, shown in _progress(tis).items():
            if seen.get(name) != shown:
                seen[name] = shown
                print(f"  {name}: {shown}", flush=True)
        run = _request(args, "GET", path)
        if run["state"] in TERMINAL:
            if run["state"] == "success":
                print(f"run {run_id} succeeded")
                return 0
            failed = sorted({_label(t) for t in tis if t["state"] in ("failed", "upstream_failed")})
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


def _label(ti: dict[str, Any]) -> str:
    """A task instance as people name it: its task id, and a mapped task's instance as `load[3]`."""
    map_index = ti.get("map_index", -1)
    return str(ti["task_id"]) if map_index < 0 else f"{ti['task_id']}[{map_index}]"


def _instance(args: argparse.Namespace) -> dict[str, Any]:
    """--map-index as the query parameter that names one instance of a mapped task (absent: the unmapped task)."""
    return {"map_index": args.map_index} if args.map_index is not None else {}


def _map_index(value: str) -> int:
    try:
        index = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an instance's index (0, 1, ...), not {value!r}") from None
    if index < 0:
        raise argparse.ArgumentTypeError(f"must be an instance's index (0, 1, ...), not {index}")
    return index


def _selection(args: argparse.Namespace) -> dict[str, Any]:
    sel: dict[str, Any] = {
        "task_ids": args.task or [],
        "include_upstream": args.upstream,
        "include_downstream": args.downstream,
    }
    if args.map_index:
        if not args.task:
            raise CliError("--map-index needs --task: the mapped task(s) whose instances to act on")
        sel["map_indexes"] = args.map_index
    return sel


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


def tasks_list(args: argparse.Namespace) -> int:
    """A run's task instances; a mapped task's instances each on a row, with their map_index."""
    tis = _request(args, "GET", f"/dags/{_q(args.dag_id)}/runs/{_q(args.run_id)}/tasks")["task_instances"]
    mapped = any(t.get("map_index", -1) >= 0 for t in tis)
    rows = []
    for t in tis:
        row = [t["task_id"], t["state"] or "none", str(t["try_number"]), t["start_date"] or "", t["end_date"] or ""]
        if mapped:
            row.insert(1, str(t["map_index"]) if t.get("map_index", -1) >= 0 else "")
        rows.append(row)
    headers = ["task_id", "state", "try", "started", "ended"]
    print(_table(rows, [*headers[:1], "map_index", *headers[1:]] if mapped else headers))
    return 0


def tasks_xcom(args: argparse.Namespace) -> int:
    path = f"/dags/{_q(args.dag_id)}/runs/{_q(args.run_id)}/tasks/{_q(args.task_id)}/xcom"
    xcoms = _request(args, "GET", path, params=_instance(args))["xcoms"]
    # Every instance of a mapped task (no --map-index): each value under its map_index.
    mapped = args.map_index is None and any(x["map_index"] >= 0 for x in xcoms)
    if args.json and mapped:
        by_key: dict[str, dict[str, Any]] = {}
        for x in xcoms:
            by_key.setdefault(x["key"], {})[str(x["map_index"])] = x["value"]
        print(json.dumps(by_key, indent=2))
    elif args.json:
        print(json.dumps({x["key"]: x["value"] for x in xcoms}, indent=2))
    elif mapped:
        rows = [[str(x["map_index"]), x["key"], json.dumps(x["value"])[:200], str(x["size"])] for x in xcoms]
        print(_table(rows, ["map_index", "key", "value", "bytes"]))
    else:
        print(
            _table([[x["key"], json.dumps(x["value"])[:200], str(x["size"])] for x in xcoms], ["key", "value", "bytes"])
        )
    return 0


def tasks_logs(args: argparse.Namespace) -> int:
    path = f"/dags/{_q(args.dag_id)}/runs/{_q(args.run_id)}/tasks/{_q(args.task_id)}/logs"
    offset = 0
    try_number = args.try_number
    while True:
        params: dict[str, Any] = {"offset": offset, **_instance(args)}
        if try_number is not None:
            params["try_number"] = try_number
        chunk = _request(args, "GET", path, params=params)
        # Later reads stay on the try the first one found, even if a retry starts meanwhile.
        try_number = chunk["try_number"]
        for line in chunk["lines"]:
            print(line, flush=True)
        offset = chunk["next_offset"]
        if chunk["complete"]:
            return 0
        if not chunk["lines"]:
            if args.follow:  # what is there is printed: the rest comes as the try writes it
                return _follow_log(args, path, {**params, "try_number": try_number}, offset)
            return 0


FOLLOW_RECONNECTS = 10  # a stream that breaks is opened again from where it was, this many times in a row


def _follow_log(args: argparse.Namespace, path: str, params: dict[str, Any], offset: int) -> int:
    """Prints the log's lines as the gateway's stream (/logs/stream) sends them, until the log is complete.

    The logs service ends the stream when the try has ended, even if its process was killed before it
    could mark its log complete (services/logs/engine.py); why, if so, goes to stderr as a note."""
    token = _token(args)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    url = _server(args) + "/api/v1" + path + "/stream"
    broken = 0
    while True:
        try:
            with httpx.stream(
                "GET", url, params={**params, "offset": offset}, headers=headers,
                timeout=httpx.Timeout(30.0, read=60.0),  # the stream sends a keepalive every 15 s
            ) as response:  # fmt: skip
                if response.status_code >= 400:
                    response.read()
                    raise CliError(_error_message(response) or f"the gateway answered {response.status_code}")
                event = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[len("event:") :].strip()
                    elif line.startswith("data:"):
                        data = json.loads(line[len("data:") :])
                        if event == "error":
                            raise CliError(str(data.get("error", {}).get("message", "the log stream failed")))
                        for item in data["lines"]:
                            print(item["text"], flush=True)
                        offset = data["next_offset"]
                        broken = 0
                        if data["complete"]:
                            if data.get("fallback_reason"):
                                print(f"note: {data['fallback_reason']}", file=sys.stderr)
                            return 0
                    elif not line:
                        event = ""
            failure = "it ended before the log was complete"
        except httpx.HTTPError as e:
            failure = f"{type(e).__name__}: {e}"
        broken += 1
        if broken > FOLLOW_RECONNECTS:
            raise CliError(f"the log stream from {_server(args)} keeps breaking ({failure})")
        time.sleep(min(0.5 * broken, 5.0))  # open it again, from where it was


def _error_message(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error", {}).get("message") if isinstance(body, dict) else None


def tasks_rendered(args: argparse.Namespace) -> int:
    """A try's templated fields as rendered before it ran (Airflow's `tasks render`, from what the try stored)."""
    path = f"/dags/{_q(args.dag_id)}/runs/{_q(args.run_id)}/tasks/{_q(args.task_id)}/rendered"
    params = {"try_number": args.try_number} if args.try_number is not None else {}
    info = _request(args, "GET", path, params={**params, **_instance(args)})
    which = f"instance {info['map_index']}, " if info.get("map_index", -1) >= 0 else ""
    print(f"# {which}try {info['try_number']}, rendered at {info['rendered_at']}")
    for name, value in info["rendered_fields"].items():
        shown = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
        print(f"# ----- {name}\n{shown}")
    return 0


def login(args: argparse.Namespace) -> int:
    username = args.username or input("user name: ")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    body = {"username": username, "password": password, "name": args.name}
    result = _request(args, "POST", "/auth/token", auth=False, json=body)
    where = credentials.save(_server(args), result["token"])
    print(f"logged in to {_server(args)} as {result['username']}; token saved in {where}")
    return 0


def whoami(args: argparse.Namespace) -> int:
    me = _request(args, "GET", "/me")
    print(f"{me['username']} (roles: {', '.join(me['roles']) or '-'})")
    return 0


def dags_refresh(args: argparse.Namespace) -> int:
    result = _request(args, "POST", f"/dags/{_q(args.dag_id)}/refresh")
    acl = ", ".join(f"{r}: {'+'.join(a)}" for r, a in sorted(result["access_control"].items())) or "none declared"
    print(f"{args.dag_id}: access control refreshed ({acl}; {result['changes']} change(s))")
    return 0


def users_list(args: argparse.Namespace) -> int:
    users = _request(args, "GET", "/users")["users"]
    rows = [[u["username"], " ".join(u["roles"]), "yes" if u["active"] else "no", u["email"]] for u in users]
    print(_table(rows, ["user", "roles", "active", "email"]))
    return 0


def users_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"username": args.username, "roles": args.role or ["spinner-users"]}
    if args.email:
        body["email"] = args.email
    if args.password_stdin:
        body["password"] = sys.stdin.readline().rstrip("\n")
    user = _request(args, "POST", "/users", json=body)
    print(f"created user {user['username']} with roles {', '.join(user['roles'])}")
    if "password" in user:
        print(f"password (shown once): {user['password']}")
    return 0


def users_update(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.role is not None:
        body["roles"] = args.role
    if args.active is not None:
        body["active"] = args.active == "yes"
    if args.password_stdin:
        body["password"] = sys.stdin.readline().rstrip("\n")
    if not body:
        raise CliError("nothing to change: give --role, --active or --password-stdin")
    user = _request(args, "PATCH", f"/users/{_q(args.username)}", json=body)
    print(f"{user['username']}: roles {', '.join(user['roles']) or '-'}, {'active' if user['active'] else 'disabled'}")
    return 0


def users_delete(args: argparse.Namespace) -> int:
    _request(args, "DELETE", f"/users/{_q(args.username)}")
    print(f"deleted user {args.username}")
    return 0


def users_token(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name}
    if args.days:
        body["expires_in_days"] = args.days
    result = _request(args, "POST", f"/users/{_q(args.username)}/tokens", json=body)
    print(result["token"])
    return 0


def roles_list(args: argparse.Namespace) -> int:
    roles = _request(args, "GET", "/roles")["roles"]

    def perms(items: list[dict[str, str]]) -> str:
        return " ".join(f"{p['action']}:{p['resource'][4:]}" for p in items) or "-"

    rows = [[r["name"], perms(r["permissions"]), perms(r.get("from_dag_files", []))] for r in roles]
    print(_table(rows, ["role", "permissions", "from DAG files"]))
    return 0


def roles_set(args: argparse.Namespace) -> int:
    perms = []
    for spec in args.permission or []:
        action, sep, dag_id = spec.partition(":")
        if not sep:
            raise CliError(
                f"--permission is ACTION:DAG_ID (e.g. can_dag_edit:tutorial or can_dag_read:*), not {spec!r}"
            )
        perms.append({"action": action, "dag_id": dag_id})
    role = _request(args, "PUT", f"/roles/{_q(args.name)}", json={"permissions": perms})
    print(f"role {role['name']}: {len(role['permissions'])} permission(s)")
    return 0


def roles_delete(args: argparse.Namespace) -> int:
    _request(args, "DELETE", f"/roles/{_q(args.name)}")
    print(f"deleted role {args.name}")
    return 0


def audit(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    for key in ("dag_id", "username", "action", "outcome"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    entries = _request(args, "GET", "/audit", params=params)["entries"]
    rows = [
        [e["ts"][:19], e["username"], e["action"], e["dag_id"] or "", e["run_id"] or "", e["remote_addr"], e["outcome"]]
        for e in entries
    ]
    print(_table(rows, ["when", "user", "action", "dag", "run", "from", "outcome"]))
    return 0


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
    server.add_argument("--token", help="API token (default $SPINNER_TOKEN, else the one `spinner login` saved)")

    p = sub.add_parser("login", parents=[server], help="get an API token for this gateway and keep it")
    p.add_argument("--username", "-u")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--name", default="cli", help="a name for the token")
    p.set_defaults(handler=_guard(login))
    p = sub.add_parser("whoami", parents=[server], help="who the token belongs to")
    p.set_defaults(handler=_guard(whoami))
    p = sub.add_parser("audit", parents=[server], help="the audit log (what you may see)")
    p.add_argument("--dag", dest="dag_id")
    p.add_argument("--user", dest="username")
    p.add_argument("--action")
    p.add_argument("--outcome", choices=["ok", "denied", "error"])
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=_guard(audit))

    users = sub.add_parser("users", help="users (Admin)").add_subparsers(dest="users_command", required=True)
    p = users.add_parser("list", parents=[server], help="list users")
    p.set_defaults(handler=_guard(users_list))
    p = users.add_parser("create", parents=[server], help="create a user (a password is made unless given)")
    p.add_argument("username")
    p.add_argument("--role", action="append", help="a role (repeat; default spinner-users)")
    p.add_argument("--email")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(handler=_guard(users_create))
    p = users.add_parser("update", parents=[server], help="change a user's roles, password or state")
    p.add_argument("username")
    p.add_argument("--role", action="append", help="the user's roles from now on (repeat)")
    p.add_argument("--active", choices=["yes", "no"])
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(handler=_guard(users_update))
    p = users.add_parser("delete", parents=[server], help="delete a user")
    p.add_argument("username")
    p.set_defaults(handler=_guard(users_delete))
    p = users.add_parser("token", parents=[server], help="make an API token for a user and print it")
    p.add_argument("username")
    p.add_argument("--name", default="api")
    p.add_argument("--days", type=int, help="expires after this many days")
    p.set_defaults(handler=_guard(users_token))

    roles = sub.add_parser("roles", help="roles (Admin)").add_subparsers(dest="roles_command", required=True)
    p = roles.add_parser("list", parents=[server], help="roles and their permissions")
    p.set_defaults(handler=_guard(roles_list))
    p = roles.add_parser("set", parents=[server], help="create a role, its DAG permissions exactly these")
    p.add_argument("name")
    p.add_argument("--permission", "-p", action="append", help="ACTION:DAG_ID, e.g. can_dag_edit:tutorial (repeat)")
    p.set_defaults(handler=_guard(roles_set))
    p = roles.add_parser("delete", parents=[server], help="delete a role")
    p.add_argument("name")
    p.set_defaults(handler=_guard(roles_delete))

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

    p = dags.add_parser("refresh", parents=[server], help="re-apply a DAG's access_control to the roles")
    p.add_argument("dag_id")
    p.set_defaults(handler=_guard(dags_refresh))

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
    p.add_argument("--map-index", type=_map_index, help=MAP_INDEX_HELP)
    p.set_defaults(handler=_guard(tasks_logs))
    p = tasks.add_parser("rendered", parents=[server], help="print a task try's templated fields as rendered")
    p.add_argument("dag_id")
    p.add_argument("run_id")
    p.add_argument("task_id")
    p.add_argument("--try", dest="try_number", type=int, help="try number (default: the latest)")
    p.add_argument("--map-index", type=_map_index, help=MAP_INDEX_HELP)
    p.set_defaults(handler=_guard(tasks_rendered))
    p = tasks.add_parser("xcom", parents=[server], help="print the XComs a task instance pushed")
    p.add_argument("dag_id")
    p.add_argument("run_id")
    p.add_argument("task_id")
    p.add_argument("--json", action="store_true", help="as one JSON object, key -> value (values in full)")
    p.add_argument(
        "--map-index", type=_map_index, help="one instance of a mapped task (default: every instance's XComs)"
    )
    p.set_defaults(handler=_guard(tasks_xcom))
    p = tasks.add_parser("list", parents=[server], help="a run's task instances (a mapped task's with their map_index)")
    p.add_argument("dag_id")
    p.add_argument("run_id")
    p.set_defaults(handler=_guard(tasks_list))

    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("dag_id")
    selection.add_argument("run_id")
    selection.add_argument("--task", "-t", action="append", help="a task id (repeat; default: every task)")
    selection.add_argument("--upstream", action="store_true", help="also the tasks upstream of those")
    selection.add_argument("--downstream", action="store_true", help="also the tasks downstream of those")
    selection.add_argument(
        "--map-index",
        type=_map_index,
        action="append",
        help="only this instance of the --task mapped task(s) (repeat; default: every instance)",
    )
    p = tasks.add_parser("clear", parents=[server, selection], help="run task instances again")
    p.add_argument("--only-failed", action="store_true", help="only failed and upstream_failed ones")
    p.set_defaults(handler=_guard(tasks_clear))
    p = tasks.add_parser("mark", parents=[server, selection], help="set task instances to success or failed")
    p.add_argument("--state", required=True, choices=["success", "failed"])
    p.set_defaults(handler=_guard(tasks_mark))
