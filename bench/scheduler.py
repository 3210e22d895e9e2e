"""Scheduler benchmark: N DAGs of M tasks over several partitions, real scheduler and executor processes.

    python bench/scheduler.py [--dags 3000] [--tasks 25] [--partitions 4] [--db sqlite,mariadb]
                              [--scenarios steady,burst] [--window 120] [--json]

The executor runs with the `instant` backend (each try goes through Start and Finish at
once), so what is measured is the control plane: parsing aside, how long a task waits
between becoming due and being queued / running, and how many task instances per second
the scheduler and executor move.

- steady: DAG i is due at t0 + i * 3600 / N (schedules spread over the hour); the figures
  cover the runs that fall due within --window seconds.
- burst: every DAG is due at the same moment; the figures cover all N runs, and
  `all_done_s` is the time from that moment until every task instance succeeded.

`cpu_ms_per_ti` is the CPU time the executor, the schedulers (together) and MariaDB used from
the first due moment to the end, per task instance done: steadier than wall time for comparing
two versions of the code, and it says which process a gain or a loss came from.

With --json the last line is one JSON object keyed by scenario, then by database, and
`machine` (bench/machine.py: CPU, cores, a single-core reference time, load at start).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
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

from sqlalchemy import func, select, update

from bench.machine import cpu_seconds, pid_of
from bench.machine import describe as describe_machine
from services.dagsync.engine import DagSync
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import LocalFolderSource
from spinner.db.engine import create_engine, session_factory
from spinner.db.migrate import upgrade
from spinner.db.models import DagModel, DagRun, ImportError_, Pool, TaskInstance
from spinner.events import NullBus
from spinner.fernet import new_key

MYSQL = os.environ.get("SPINNER_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def partitions(n: int) -> list[tuple[str, int]]:
    """(folder, tier) for n partitions: tiers 1, 2, 3, 1, ... each numbered from 0."""
    out, counts = [], {1: 0, 2: 0, 3: 0}
    for i in range(n):
        tier = i % 3 + 1
        out.append((f"spinner_tier_{tier}_{counts[tier]}", tier))
        counts[tier] += 1
    return out


def dag_source(dag_id: str, tier: int, tasks: int, due: dt.datetime, shape: str) -> str:
    start = (due - dt.timedelta(hours=1)).isoformat()
    lines = [
        "import datetime as dt",
        "from spinner import DAG, BashOperator, Tier",
        f"with DAG(dag_id={dag_id!r}, tier={tier}, schedule=dt.timedelta(hours=1), catchup=False,",
        f"         start_date=dt.datetime.fromisoformat({start!r}), max_active_tasks={tasks}) as dag:",
        f"    t = [BashOperator(task_id=f't{{i}}', bash_command='true') for i in range({tasks})]",
    ]
    if shape == "chain":
        lines.append(f"    for i in range(1, {tasks}):\n        t[i - 1] >> t[i]")
    else:  # fan-out and join
        lines.append(f"    for i in range(1, {tasks} - 1):\n        t[0] >> t[i] >> t[{tasks} - 1]")
    return "\n".join(lines) + "\n"


def upstream_of(shape: str, tasks: int, i: int) -> list[int]:
    if shape == "chain":
        return [i - 1] if i else []
    if i == 0:
        return []
    return [0] if i < tasks - 1 else list(range(1, tasks - 1))


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "mean": round(statistics.fmean(values), 3) if values else None,
    }


async def new_database(kind: str, home: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{home / 'spinner.db'}", None
    import aiomysql
    from sqlalchemy.engine import make_url

    base = make_url(MYSQL)
    name = f"spinner_bench_{os.getpid()}_{int(time.time())}"
    conn = await aiomysql.connect(host=base.host or "127.0.0.1", port=base.port or 3306, user=base.username or "root",
                                  password=base.password or "")  # fmt: skip
    async with conn.cursor() as cur:
        await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.close()
    return base.set(database=name, query={"charset": "utf8mb4"}).render_as_string(hide_password=False), name


async def drop_database(name: str) -> None:
    import aiomysql
    from sqlalchemy.engine import make_url

    base = make_url(MYSQL)
    conn = await aiomysql.connect(host=base.host or "127.0.0.1", port=base.port or 3306, user=base.username or "root",
                                  password=base.password or "")  # fmt: skip
    async with conn.cursor() as cur:
        await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


async def run_scenario(args: argparse.Namespace, db_kind: str, scenario: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"spinner-bench-{db_kind}-{scenario}-"))
    home, repo = work / "home", work / "repo"
    home.mkdir()
    url, mysql_name = await new_database(db_kind, home)
    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():  # sized for the load, as an operator would (Airflow's is 128 too)
        await s.execute(update(Pool).where(Pool.name == "default_pool").values(slots=1_000_000))
    parts = partitions(args.partitions)
    setup = args.setup_seconds or await calibrate(args, work)
    say(f"allowing {setup:.0f} s for parsing before the first runs are due")
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=setup)
    shapes: dict[str, str] = {}
    dues: dict[str, dt.datetime] = {}
    for i in range(args.dags):
        folder, tier = parts[i % len(parts)]
        dag_id = f"bench_{i:05d}"
        shape = "chain" if i % 2 == 0 else "fan"
        shapes[dag_id] = shape
        due = t0 if scenario == "burst" else t0 + dt.timedelta(seconds=i * 3600 / args.dags)
        dues[dag_id] = due
        path = repo / folder / f"team_{i % 7}" / f"{dag_id}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dag_source(dag_id, tier, args.tasks, due, shape))
    await DagSync(LocalFolderSource(repo), SnapshotStore(home / "snapshots"), NullBus(), keep=2,
                  clock=lambda: dt.datetime.now(dt.UTC)).sync_once()  # fmt: skip

    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
    exec_port = free_port()
    env.update(SPINNER_HOME=str(home), SPINNER_DATABASE_URL=url, SPINNER_EXECUTOR_ADDRESS=f"127.0.0.1:{exec_port}",
               SPINNER_POLL_INTERVAL="0.5", SPINNER_BACKEND="instant", SPINNER_LOG_LEVEL="WARNING",
               SPINNER_MAX_RUNNING_TASKS="100000", SPINNER_FERNET_KEY=new_key())  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    log_file = open(work / "services.log", "wb")
    cli = [sys.executable, "-m", "spinner.cli.main"]
    procs.append(subprocess.Popen([*cli, "executor", "--port", str(exec_port)], env=env, stdout=log_file,
                                  stderr=subprocess.STDOUT))  # fmt: skip
    for folder, _ in parts:
        procs.append(subprocess.Popen([*cli, "scheduler", "--partition", folder, "--port", "0"], env=env,
                                      stdout=log_file, stderr=subprocess.STDOUT))  # fmt: skip
    result: dict[str, Any] = {"dags": args.dags, "tasks": args.tasks, "partitions": args.partitions}
    try:
        started = time.monotonic()
        while True:
            async with sessions() as s:
                parsed = (await s.execute(select(func.count()).select_from(DagModel))).scalar_one()
            say(f"{db_kind}/{scenario}: {parsed}/{args.dags} DAGs parsed")
            if parsed >= args.dags:
                break
            if dt.datetime.now(dt.UTC) >= t0:
                async with sessions() as s:
                    errors = (await s.execute(select(ImportError_.filename, ImportError_.stacktrace))).all()
                for name, trace in errors[:5]:
                    say(f"import error in {name}: {trace.strip().splitlines()[-1] if trace.strip() else ''}")
                log_file.flush()
                tail = (work / "services.log").read_text(errors="replace").splitlines()[-20:]
                say("services.log ends:\n" + "\n".join(tail))
                raise SystemExit(f"parsing took longer than --setup-seconds {setup}; raise it")
            await asyncio.sleep(5)
        result["parse_s"] = round(time.monotonic() - started, 1)
        wait = (t0 - dt.datetime.now(dt.UTC)).total_seconds()
        say(f"all parsed in {result['parse_s']} s; first runs due in {wait:.0f} s")
        await asyncio.sleep(max(wait, 0))
        cpu_pids = {"executor": [procs[0].pid], "schedulers": [p.pid for p in procs[1:]]}
        if db_kind == "mariadb" and (db_pid := pid_of("mariadbd") or pid_of("mysqld")):
            cpu_pids["database"] = [db_pid]
        cpu_before = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in cpu_pids.items()}
        last_due = t0 + dt.timedelta(seconds=args.window if scenario == "steady" else 0)
        measured = {d: due for d, due in dues.items() if due <= last_due}
        total = len(measured) * args.tasks
        deadline = time.monotonic() + (args.burst_timeout if scenario == "burst" else args.window + 60)
        while time.monotonic() < deadline:
            await asyncio.sleep(2)
            async with sessions() as s:
                done = (
                    await s.execute(
                        select(func.count())
                        .select_from(TaskInstance)
                        .where(TaskInstance.state == "success", TaskInstance.dag_id.in_(list(measured)))
                    )
                ).scalar_one()
            say(f"{db_kind}/{scenario}: {done}/{total} task instances done")
            if done >= total and dt.datetime.now(dt.UTC) > last_due:
                break
        all_done = (dt.datetime.now(dt.UTC) - t0).total_seconds()
        cpu = {name: sum(cpu_seconds(pid) for pid in pids) - cpu_before[name] for name, pids in cpu_pids.items()}
        result.update(await measure(sessions, shapes, measured, args.tasks, t0))
        if result["tis_done"]:  # CPU per task instance: steadier than wall time when comparing changes
            per_ti = {name: round(seconds * 1000 / result["tis_done"], 3) for name, seconds in cpu.items()}
            result["cpu_ms_per_ti"] = {**per_ti, "total": round(sum(per_ti.values()), 3)}
        if scenario == "burst":
            result["all_done_s"] = round(all_done, 1) if result["tis_done"] >= total else None
        result["expected_tis"] = total
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        log_file.close()
        result["warnings"] = summarize_log(work / "services.log")
        await engine.dispose()
        if mysql_name:
            await drop_database(mysql_name)
        if args.keep:
            say(f"kept {work} (services.log)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def summarize_log(path: Path) -> dict[str, int]:
    """The services' warnings and errors, counted by kind (numbers and ids masked), most frequent first."""
    import re
    from collections import Counter

    kinds: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        if " WARNING " in line or " ERROR " in line:
            text = line.split(" ", 3)[-1]
            kinds[re.sub(r"[0-9a-f]{6,}|\d+(\.\d+)?|'[^']*'|\([^)]*\)", "_", text)[:160]] += 1
    top = dict(kinds.most_common(8))
    for kind, n in top.items():
        say(f"  {n} x {kind}")
    return top


async def calibrate(args: argparse.Namespace, work: Path) -> float:
    """Seconds to allow for parsing every file: a few timed parses, scaled, with a margin (2 cores)."""
    from services.scheduler.engine.parsing import Parser

    probe = work / "probe" / "spinner_tier_1_0"
    probe.mkdir(parents=True)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    files = []
    for i in range(4):
        f = probe / f"p{i}.py"
        f.write_text(dag_source(f"probe_{i}", 1, args.tasks, due, "chain"))
        files.append(f)
    parser = Parser()
    try:
        await parser.parse(probe.parent, files[0], 60)  # starts the fork server, as a scheduler's first parse does
        started = time.monotonic()
        await asyncio.gather(*(parser.parse(probe.parent, f, 60) for f in files))
        per_file = (time.monotonic() - started) / len(files)  # two at a time on two cores
    finally:
        await parser.aclose()
    # Writing each parsed file's DAG to the database costs about as much again (0.05 s a file on 2 cores).
    return float(max(60.0, args.dags * (per_file * 2.0 + 0.05) + 60))


async def measure(
    sessions: Any, shapes: dict[str, str], dues: dict[str, dt.datetime], tasks: int, t0: dt.datetime
) -> dict[str, Any]:
    """Delays from when each run was due (its DAG's planned moment), from the rows the services wrote."""
    async with sessions() as s:
        q = select(DagRun).where(DagRun.run_type == "scheduled", DagRun.dag_id.in_(list(dues)))
        runs = (await s.execute(q)).scalars().all()
        keys = {(r.dag_id, r.run_id): r for r in runs}
        tis = (await s.execute(select(TaskInstance).where(TaskInstance.dag_id.in_(list(dues))))).scalars().all()
    by_run: dict[tuple[str, str], dict[int, TaskInstance]] = {}
    for ti in tis:
        if (ti.dag_id, ti.run_id) in keys:
            by_run.setdefault((ti.dag_id, ti.run_id), {})[int(ti.task_id[1:])] = ti
    first_q, first_r, down_q, ended = [], [], [], []
    for key, run in keys.items():
        due = dues[run.dag_id]
        shape = shapes[run.dag_id]
        for i, ti in by_run.get(key, {}).items():
            if ti.end_date is not None and ti.state == "success":
                ended.append(ti.end_date)
            ups = upstream_of(shape, tasks, i)
            if not ups:
                if ti.queued_at:
                    first_q.append((ti.queued_at - due).total_seconds())
                if ti.start_date:
                    first_r.append((ti.start_date - due).total_seconds())
            elif ti.queued_at:
                up_end = [by_run[key][u].end_date for u in ups if u in by_run[key] and by_run[key][u].end_date]
                if up_end:
                    down_q.append((ti.queued_at - max(e for e in up_end if e)).total_seconds())
    span = (max(ended) - t0).total_seconds() if ended else 0
    return {
        "runs": len(keys),
        "tis_done": len(ended),
        "first_task_to_queued_s": summary(first_q),
        "first_task_to_running_s": summary(first_r),
        "downstream_to_queued_s": summary(down_q),
        "tis_per_s": round(len(ended) / span, 1) if span > 0 else None,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dags", type=int, default=3000)
    p.add_argument("--tasks", type=int, default=25)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--db", default="mariadb,sqlite")
    p.add_argument("--scenarios", default="steady,burst")
    p.add_argument("--window", type=float, default=120, help="steady: seconds of due runs to measure")
    p.add_argument("--burst-timeout", type=float, default=600)
    p.add_argument("--setup-seconds", type=float, default=0, help="time allowed for parsing (0: calibrate)")
    p.add_argument("--keep", action="store_true", help="keep the work folder and its services.log")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    machine = describe_machine()
    say(f"machine: {machine}")
    results: dict[str, Any] = {"machine": machine}
    for scenario in args.scenarios.split(","):
        for db in args.db.split(","):
            say(f"--- {scenario} on {db}: {args.dags} DAGs x {args.tasks} tasks over {args.partitions} partitions")
            results.setdefault(scenario, {})[db] = asyncio.run(run_scenario(args, db, scenario))
            print(f"{scenario} {db}: {json.dumps(results[scenario][db])}", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
