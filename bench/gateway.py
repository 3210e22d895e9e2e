"""Gateway benchmark: 3,000 DAGs with 30 days of runs, 250 concurrent clients on the pages people use most.

    python bench/gateway.py [--dags 3000] [--days 30] [--tasks 5] [--clients 250] [--duration 30]
                            [--think 5.0] [--gateways 2] [--db sqlite|mariadb] [--json]

The database is filled directly (DAGs, serialized DAGs, code, one run a day per DAG with its
task instances, a tenth of the DAGs with an access_control), then the real gateway and logs
services are started as processes. Each client is a person at a browser or a script: it asks
for one of

- dag_list: GET /api/v1/dags (a page of 50, a random offset, one in four with a search),
- dag_page: GET /dags/<id> (the HTML DAG page: grid of 25 runs, graph, Gantt, details, code),
- task_log: GET /api/v1/dags/<id>/runs/<run>/tasks/<task>/logs (through the logs service),

then waits a random think time (mean --think seconds) and asks again, so 250 clients offer
about 250 / think requests a second. Every request carries an API token (a real user with
the spinner-users role, checked for every DAG). Latency is measured at the client, from
sending to the whole body read; p50/p95/p99 are printed per endpoint and overall.

With --json the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
from sqlalchemy import insert

from spinner.db import auth as db_auth
from spinner.db.engine import create_engine, session_factory
from spinner.db.migrate import upgrade
from spinner.db.models import DagCode, DagModel, DagRun, SerializedDagModel, TaskInstance
from spinner.fernet import new_key
from spinner.logpaths import complete_marker, local_log_path

MYSQL = os.environ.get("SPINNER_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306")
BATCH = 5000
LOGGED_TRIES = 300


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _batched(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), BATCH):
        await session.execute(insert(model), rows[i : i + BATCH])


async def seed(db_url: str, home: Path, dags: int, days: int, tasks: int) -> tuple[str, list[tuple[str, str, str]]]:
    """Fills the database; returns a viewer's token and the (dag, run, task) tries that have a log file."""
    engine = create_engine(db_url)
    await upgrade(engine)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = now.replace(hour=0, minute=0, second=0)
    task_ids = [f"task_{t}" for t in range(tasks)]
    parts = [("spinner_tier_1_0", 1), ("spinner_tier_1_1", 1), ("spinner_tier_2_0", 2), ("spinner_tier_3_0", 3)]
    dag_rows: list[dict[str, Any]] = []
    ser_rows: list[dict[str, Any]] = []
    code_rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    ti_rows: list[dict[str, Any]] = []
    for i in range(dags):
        dag_id = f"team{i % 40:02d}_dag_{i:05d}"
        partition, tier = parts[i % len(parts)]
        fileloc = f"{partition}/team{i % 40:02d}/dag_{i:05d}.py"
        acl = {f"team{i % 40:02d}": ["can_dag_edit"]} if i % 10 == 0 else {}
        dag_rows.append(
            {
                "dag_id": dag_id, "partition": partition, "fileloc": fileloc, "tier": tier, "schedule": "@daily",
                "is_paused": i % 17 == 0, "is_active": True, "owner": f"team{i % 40:02d}", "description": "",
                "tags": ["bench", f"team{i % 40:02d}"], "max_active_runs": 1, "max_active_tasks": 16,
                "bundle_version": "v1", "next_dagrun": today + dt.timedelta(days=1), "last_parsed_at": now,
            }
        )  # fmt: skip
        tasks_json = [
            {"task_id": t, "operator": "BashOperator", "upstream_task_ids": [task_ids[k - 1]] if k else [],
             "downstream_task_ids": [task_ids[k + 1]] if k + 1 < tasks else []}
            for k, t in enumerate(task_ids)
        ]  # fmt: skip
        ser_rows.append(
            {"dag_id": dag_id, "partition": partition, "fileloc": fileloc, "dag_hash": "h", "bundle_version": "v1",
             "updated_at": now, "data": {"dag_id": dag_id, "tasks": tasks_json, "access_control": acl}}
        )  # fmt: skip
        code_rows.append(
            {"fileloc_hash": hashlib.sha256(fileloc.encode()).hexdigest(), "fileloc": fileloc, "updated_at": now,
             "source_code": f"# {dag_id}\n" + "from spinner import DAG\n" * 40}
        )  # fmt: skip
        for d in range(days):
            logical = today - dt.timedelta(days=days - d)
            run_id = f"scheduled__{logical.isoformat()}"
            state = "failed" if (i + d) % 23 == 0 else "success"
            run_rows.append(
                {"dag_id": dag_id, "run_id": run_id, "run_type": "scheduled", "state": state,
                 "logical_date": logical, "data_interval_start": logical, "data_interval_end": logical,
                 "conf": {}, "partition": partition, "bundle_version": "v1", "triggered_by": "scheduler",
                 "trace_context": "", "created_at": logical, "start_date": logical,
                 "end_date": logical + dt.timedelta(minutes=5)}
            )  # fmt: skip
            for k, t in enumerate(task_ids):
                ti_rows.append(
                    {"dag_id": dag_id, "run_id": run_id, "task_id": t, "partition": partition,
                     "state": "failed" if state == "failed" and k == tasks - 1 else "success", "try_number": 1,
                     "max_tries": 0, "operator": "BashOperator", "start_date": logical + dt.timedelta(minutes=k),
                     "end_date": logical + dt.timedelta(minutes=k + 1), "duration": 60.0, "hostname": "bench",
                     "executor": "bench", "error": "", "pool": "default_pool", "priority_weight": 1}
                )  # fmt: skip
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        for model, rows in ((DagModel, dag_rows), (SerializedDagModel, ser_rows), (DagCode, code_rows)):
            await _batched(s, model, rows)
    say(f"  {len(dag_rows)} DAGs; writing {len(run_rows)} runs and {len(ti_rows)} task instances")
    async with sessions() as s, s.begin():
        await _batched(s, DagRun, run_rows)
    async with sessions() as s, s.begin():
        await _batched(s, TaskInstance, ti_rows)
    async with sessions() as s, s.begin():
        await db_auth.ensure_defaults(s)
        await db_auth.sync_acl(s, await db_auth.declared_acls(s))
        user = await db_auth.create_user(s, "bench", password=None, roles=[db_auth.DEFAULT_ROLE], now=now)
        token = await db_auth.create_token(s, user.id, "bench", now)
    await engine.dispose()
    rng = random.Random(7)
    logged: list[tuple[str, str, str]] = []
    for _ in range(LOGGED_TRIES):
        r = rng.choice(run_rows)
        t = rng.choice(task_ids)
        path = local_log_path(home / "logs", r["dag_id"], r["run_id"], t, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{r['run_id']} {t} line {n}: doing some work\n" for n in range(50)))
        complete_marker(path).touch()
        logged.append((str(r["dag_id"]), str(r["run_id"]), t))
    return token, logged


def start(name: str, argv: list[str], env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with open(out / f"{name}.log", "wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "spinner.cli.main", *argv], env=env, stdout=f, stderr=subprocess.STDOUT
        )


async def wait_http(url: str, within: float) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url + "/api/v1/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the gateway did not start")


async def drive(
    urls: list[str], token: str, dag_ids: list[str], logged: list[tuple[str, str, str]], clients: int, duration: float,
    think: float, warmup: float,
) -> dict[str, Any]:  # fmt: skip
    """Closed-loop clients with think time; latencies recorded after the warm-up."""
    lat: dict[str, list[float]] = {"dag_list": [], "dag_page": [], "task_log": []}
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"authorization": f"Bearer {token}"}
    t0 = time.monotonic()
    measure_from, stop_at = t0 + warmup, t0 + warmup + duration

    async def one(client: httpx.AsyncClient, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, think))  # spread the first requests
        while time.monotonic() < stop_at:
            kind = rng.choice(("dag_list", "dag_page", "task_log"))
            if kind == "dag_list":
                params: dict[str, Any] = {"limit": 50, "offset": rng.randrange(0, len(dag_ids), 50)}
                if rng.random() < 0.25:
                    params = {"limit": 50, "search": f"team{rng.randrange(40):02d}"}
                request = client.build_request("GET", "/api/v1/dags", params=params)
            elif kind == "dag_page":
                request = client.build_request("GET", f"/dags/{rng.choice(dag_ids)}")
            else:
                d, r, t = rng.choice(logged)
                request = client.build_request("GET", f"/api/v1/dags/{d}/runs/{r}/tasks/{t}/logs")
            started = time.monotonic()
            try:
                response = await client.send(request)
                await response.aread()
                status = response.status_code
            except httpx.HTTPError as e:
                status = type(e).__name__  # type: ignore[assignment]
            took = time.monotonic() - started
            if started >= measure_from and time.monotonic() <= stop_at + 5:
                if status == 200:
                    lat[kind].append(took * 1000)
                else:
                    errors[f"{kind}:{status}"] = errors.get(f"{kind}:{status}", 0) + 1
            await asyncio.sleep(rng.expovariate(1 / think))

    pool = [httpx.AsyncClient(base_url=u, headers=headers, limits=limits, timeout=30) for u in urls]
    try:
        await asyncio.gather(*(one(pool[i % len(pool)], random.Random(i)) for i in range(clients)))
    finally:
        for c in pool:
            await c.aclose()
    every = [v for vs in lat.values() for v in vs]
    out: dict[str, Any] = {}
    for kind, vs in [*lat.items(), ("all", every)]:
        out[kind] = {
            "requests": len(vs), "p50_ms": round(pct(vs, 50), 1), "p95_ms": round(pct(vs, 95), 1),
            "p99_ms": round(pct(vs, 99), 1), "mean_ms": round(statistics.fmean(vs), 1) if vs else 0.0,
        }  # fmt: skip
    out["all"]["per_second"] = round(len(every) / duration, 1)
    out["errors"] = errors
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="spinner-bench-gw-"))
    db_name = ""
    try:
        if args.db == "mariadb":
            import aiomysql
            from sqlalchemy.engine import make_url

            base = make_url(MYSQL)
            db_name = f"spinner_bench_gw_{os.getpid()}"
            conn = await aiomysql.connect(host=base.host, port=base.port or 3306, user=base.username or "root",
                                          password=base.password or "")  # fmt: skip
            async with conn.cursor() as cur:
                await cur.execute(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            conn.close()
            db_url = base.set(database=db_name, query={"charset": "utf8mb4"}).render_as_string(hide_password=False)
        else:
            db_url = f"sqlite+aiosqlite:///{work / 'spinner.db'}"
        say(f"seeding {args.dags} DAGs x {args.days} days x {args.tasks} tasks ({args.db})")
        t = time.monotonic()
        token, logged = await seed(db_url, work, args.dags, args.days, args.tasks)
        say(f"  seeded in {time.monotonic() - t:.0f} s")
        https, logs = [free_port() for _ in range(args.gateways)], free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")},
            "SPINNER_HOME": str(work), "SPINNER_DATABASE_URL": db_url, "SPINNER_LOGS_ADDRESS": f"127.0.0.1:{logs}",
            "SPINNER_LOG_LEVEL": "WARNING", "SPINNER_FERNET_KEY": new_key(),
        }  # fmt: skip
        # Gateways are stateless: with --gateways N, N processes share the load (clients spread over them).
        procs = [start("logs", ["logs", "--port", str(logs)], env, work)] + [
            start(f"gateway{i}", ["gateway", "--port", str(port), "--grpc-port", str(free_port())], env, work)
            for i, port in enumerate(https)
        ]
        try:
            urls = [f"http://127.0.0.1:{port}" for port in https]
            for url in urls:
                await wait_http(url, 60)
            dag_ids = [f"team{i % 40:02d}_dag_{i:05d}" for i in range(args.dags)]
            say(f"driving {args.clients} clients for {args.duration:g} s (think time {args.think:g} s)")
            result = await drive(urls, token, dag_ids, logged, args.clients, args.duration, args.think, args.warmup)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        result["setup"] = {"dags": args.dags, "days": args.days, "tasks": args.tasks, "runs": args.dags * args.days,
                           "task_instances": args.dags * args.days * args.tasks, "clients": args.clients,
                           "think_s": args.think, "duration_s": args.duration, "db": args.db,
                           "gateways": args.gateways}  # fmt: skip
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if db_name:
            import aiomysql
            from sqlalchemy.engine import make_url

            base = make_url(MYSQL)
            conn = await aiomysql.connect(host=base.host, port=base.port or 3306, user=base.username or "root",
                                          password=base.password or "")  # fmt: skip
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{db_name}`")
            conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dags", type=int, default=3000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--clients", type=int, default=250)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--think", type=float, default=5.0, help="mean seconds a client waits between requests")
    ap.add_argument("--gateways", type=int, default=2, help="gateway processes sharing the clients")
    ap.add_argument("--db", choices=["sqlite", "mariadb"], default="sqlite")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = asyncio.run(main_async(args))
    print(f"{'endpoint':<10} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for kind in ("dag_list", "dag_page", "task_log", "all"):
        r = result[kind]
        print(f"{kind:<10} {r['requests']:>9} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8}")
    print(f"throughput: {result['all']['per_second']} requests/s; errors: {result['errors'] or 'none'}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
