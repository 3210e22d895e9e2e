"""Sensor benchmark: many reschedule-mode sensors waiting at once hold no process and no slot, and cost
the scheduler's loop next to nothing.

    python bench/sensors.py [--sensors 1000] [--per-dag 100] [--pool-slots 32] [--db sqlite,mariadb]
                            [--window 30] [--profile PATH] [--json]

A real executor process (local backend: every poke is a real runner process) and a scheduler
in this process (so its `spinner.scheduler.loop.duration` histogram can be read). The sensors
are PythonSensors in reschedule mode that are never met, with an hour between pokes, in a pool
of `--pool-slots` slots: in poke mode only that many could ever wait at once.

1. idle: the DAGs are parsed, no run is active; the scheduler's loop is measured for --window s.
2. first pokes: every DAG is triggered; each sensor pokes once through the pool and goes
   up_for_reschedule (`first_pokes_s`: until all have).
3. waiting: the loop is measured again for --window s, while the executor's running tries and
   the pool's used slots are sampled every second (`max_processes`, `max_slots_used`: 0 is the claim).

`loop_ratio` is the waiting loop's mean duration over the idle one (the target: at most 1.10).
`cpu_ms_per_s` is this process's CPU (the scheduler, mostly) per second of each window. With
--json the last line is one JSON object keyed by database, and `machine` (bench/machine.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from spinner.grpcserver import channel
from spinner.identity import load_identity

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc
from cryptography.fernet import Fernet
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from sqlalchemy import Engine, event, func, select, update

from bench.machine import describe as describe_machine
from bench.scheduler import drop_database, free_port, new_database, say
from services.dagsync.engine import DagSync
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import LocalFolderSource
from services.scheduler.__main__ import serve as serve_scheduler
from spinner.config import SchedulerSettings
from spinner.db.engine import create_engine, session_factory
from spinner.db.migrate import upgrade
from spinner.db.models import DagModel, Pool, TaskInstance
from spinner.events import NullBus
from spinner.telemetry import setup_telemetry
from spinner.v1 import executor_pb2, executor_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc

PARTITION = "spinner_tier_2_0"


def dag_source(dag_id: str, sensors: int) -> str:
    return "\n".join(
        [
            "from spinner import DAG, PythonSensor, Tier",
            "",
            "def never() -> bool:",
            "    return False",
            "",
            f"with DAG(dag_id={dag_id!r}, tier=Tier.TIER2, max_active_tasks={sensors}) as dag:",
            f"    for i in range({sensors}):",
            "        PythonSensor(task_id=f's{i:04d}', python_callable=never, mode='reschedule',",
            "                     poke_interval=3600, timeout=86400)",
            "",
        ]
    )


class StatementClock:
    """Counts and times the SQL statements of every engine but the benchmark's own (the scheduler's):
    where a pass's time goes, per window."""

    def __init__(self, own: Engine) -> None:
        self._own = own
        self.count = 0
        self.seconds = 0.0
        self.by_statement: dict[str, list[float]] = {}
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)

    def close(self) -> None:
        event.remove(Engine, "before_cursor_execute", self._before)
        event.remove(Engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if conn.engine is self._own:
            return
        spent = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        self.count += 1
        self.seconds += spent
        entry = self.by_statement.setdefault(" ".join(statement.split())[:90], [0, 0.0])
        entry[0] += 1
        entry[1] += spent

    def snapshot(self) -> tuple[int, float, dict[str, list[float]]]:
        return self.count, self.seconds, {k: list(v) for k, v in self.by_statement.items()}


def loop_histogram(reader: InMemoryMetricReader) -> tuple[float, int]:
    """(sum in seconds, count) of the scheduler's loop.duration histogram, cumulative."""
    data = reader.get_metrics_data()
    total, count = 0.0, 0
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "spinner.scheduler.loop.duration":
                    for point in metric.data.data_points:
                        if isinstance(point, HistogramDataPoint):
                            total += point.sum
                            count += point.count
    return total, count


async def window(
    reader: InMemoryMetricReader, clock: StatementClock, seconds: float, sample: Any = None
) -> dict[str, Any]:
    """The loop's mean duration over `seconds`, the statements per pass (all of the scheduler's, its
    other loops' too), and the most `sample()` returned each second."""
    total0, count0 = loop_histogram(reader)
    q0, qs0, by0 = clock.snapshot()
    load0 = os.getloadavg()[0]
    cpu0, wall0 = time.process_time(), time.monotonic()
    peaks: dict[str, int] = {}
    while time.monotonic() - wall0 < seconds:
        await asyncio.sleep(1)
        if sample is not None:
            for name, value in (await sample()).items():
                best = min if name.startswith("min_") else max
                peaks[name] = best(peaks.get(name, value), value)
    total1, count1 = loop_histogram(reader)
    q1, qs1, by1 = clock.snapshot()
    wall = time.monotonic() - wall0
    passes = count1 - count0
    top = sorted(
        ((k, v[0] - by0.get(k, [0, 0.0])[0], v[1] - by0.get(k, [0, 0.0])[1]) for k, v in by1.items()),
        key=lambda e: -e[2],
    )[:6]
    out: dict[str, Any] = {
        "passes": passes,
        "loop_mean_ms": round((total1 - total0) * 1000 / passes, 3) if passes else None,
        "statements_per_pass": round((q1 - q0) / passes, 2) if passes else None,
        "statement_ms_per_pass": round((qs1 - qs0) * 1000 / passes, 3) if passes else None,
        "top_statements": [{"sql": k, "count": n, "ms": round(t * 1000, 1)} for k, n, t in top if n],
        "cpu_ms_per_s": round((time.process_time() - cpu0) * 1000 / wall, 1),
        "load_1m": round((load0 + os.getloadavg()[0]) / 2, 2),
    }
    return out | peaks


async def run_db(args: argparse.Namespace, db_kind: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"spinner-bench-sensors-{db_kind}-"))
    home, repo = work / "home", work / "repo"
    home.mkdir()
    url, mysql_name = await new_database(db_kind, home)
    engine = create_engine(url)
    clock = StatementClock(engine.sync_engine)
    await upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        await s.execute(update(Pool).where(Pool.name == "default_pool").values(slots=args.pool_slots))
    dags = max(1, args.sensors // args.per_dag)
    for i in range(dags):
        path = repo / PARTITION / "bench" / f"sensors_{i:03d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dag_source(f"sensors_{i:03d}", args.per_dag))
    await DagSync(LocalFolderSource(repo), SnapshotStore(home / "snapshots"), NullBus(), keep=2,
                  clock=lambda: dt.datetime.now(dt.UTC)).sync_once()  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
    exec_port = free_port()
    env.update(SPINNER_HOME=str(home), SPINNER_DATABASE_URL=url, SPINNER_BACKEND="local", SPINNER_LOG_LEVEL="WARNING",
               SPINNER_POLL_INTERVAL="1", SPINNER_FERNET_KEY=Fernet.generate_key().decode())  # fmt: skip
    log_file = open(work / "executor.log", "wb")
    executor = subprocess.Popen([sys.executable, "-m", "spinner.cli.main", "executor", "--port", str(exec_port)],
                                env=env, stdout=log_file, stderr=subprocess.STDOUT)  # fmt: skip
    reader = InMemoryMetricReader()
    settings = SchedulerSettings(partition=PARTITION, port=0, executor_address=f"127.0.0.1:{exec_port}", home=home,
                                 database_url=url, poll_interval=1.0, log_level="WARNING")  # fmt: skip
    telemetry = setup_telemetry("bench-sensors", settings, metric_readers=[reader])
    stop = asyncio.Event()
    ready: list[str] = []
    scheduler = asyncio.create_task(serve_scheduler(settings, stop, ready=ready.append, telemetry=telemetry))
    total = dags * args.per_dag
    result: dict[str, Any] = {"sensors": total, "dags": dags, "pool_slots": args.pool_slots}
    try:
        while not ready:
            if scheduler.done():
                scheduler.result()
            await asyncio.sleep(0.2)
        while True:
            async with sessions() as s:
                parsed = (await s.execute(select(func.count()).select_from(DagModel))).scalar_one()
            if parsed >= dags:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(3)  # parsing settles
        exec_channel = channel(f"127.0.0.1:{exec_port}", identity=load_identity(settings.identities, "scheduler"))
        exec_stub = executor_pb2_grpc.ExecutorServiceStub(exec_channel)
        deadline = time.monotonic() + 60
        while True:  # the executor is up before anything is measured
            if executor.poll() is not None:
                raise SystemExit(f"the executor exited ({executor.returncode}): {(work / 'executor.log').read_text()}")
            try:
                await exec_stub.GetStatus(executor_pb2.GetExecutorStatusRequest(), timeout=5)
                break
            except grpc.aio.AioRpcError as e:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the executor did not answer in 60 s: {e.details()}") from None
                await asyncio.sleep(0.5)

        async def sample() -> dict[str, int]:
            status = await exec_stub.GetStatus(executor_pb2.GetExecutorStatusRequest(), timeout=10)
            async with sessions() as s:
                used = (
                    await s.execute(
                        select(func.count())
                        .select_from(TaskInstance)
                        .where(TaskInstance.state.in_(("queued", "running")))
                    )
                ).scalar_one()
                waiting = (
                    await s.execute(
                        select(func.count()).select_from(TaskInstance).where(TaskInstance.state == "up_for_reschedule")
                    )
                ).scalar_one()
            return {"max_processes": int(status.running), "max_slots_used": int(used), "min_waiting": int(waiting)}

        # Both windows sample the same way (the sampling shares this process and its event loop).
        say(f"{db_kind}: {dags} DAGs parsed; measuring the idle loop for {args.window:g} s")
        result["idle"] = await window(reader, clock, args.window, sample)
        say(f"{db_kind}: idle {result['idle']}")

        async with channel(ready[0], identity=load_identity(settings.identities, "gateway")) as ch:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(ch)
            for i in range(dags):
                await stub.TriggerDagRun(scheduler_pb2.TriggerDagRunRequest(dag_id=f"sensors_{i:03d}"), timeout=30)
        started = time.monotonic()
        while True:
            async with sessions() as s:
                rows = (await s.execute(select(TaskInstance.state, func.count()).group_by(TaskInstance.state))).all()
            states = {str(r[0]): int(r[1]) for r in rows}
            if states.get("up_for_reschedule", 0) >= total:
                break
            if time.monotonic() - started > args.first_poke_timeout:
                raise SystemExit(f"the first pokes did not all end in {args.first_poke_timeout:g} s: {states}")
            say(f"{db_kind}: first pokes: {states}")
            await asyncio.sleep(3)
        result["first_pokes_s"] = round(time.monotonic() - started, 1)
        # The last runner processes exit and the burst's after-effects settle (SQLite checkpoints its WAL,
        # InnoDB purges the old row versions): what is measured is 1,000 sensors waiting, not the burst.
        await asyncio.sleep(args.settle)

        say(f"{db_kind}: {total} sensors wait; measuring the loop for {args.window:g} s")
        profiler = None
        if args.profile:  # this process's event loop: the scheduler's passes, and the sampling
            from pyinstrument import Profiler

            say("profiling the waiting window: its loop time includes the profiler's, do not read its ratio")
            result["profiled"] = True
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
        waiting = await window(reader, clock, args.window, sample)
        if profiler is not None:
            profiler.stop()
            out = Path(args.profile).with_suffix(f".{db_kind}.txt")
            session = profiler.last_session
            assert session is not None
            session.save(str(out.with_suffix(".pyisession")))  # pyinstrument --load-prev-session / -r html
            out.write_text(profiler.output_text(unicode=False, show_all=True))
            say(f"{db_kind}: profile of the waiting window in {out}")
        await exec_channel.close()
        result["waiting"] = waiting
        idle_ms, wait_ms = result["idle"]["loop_mean_ms"], waiting["loop_mean_ms"]
        result["loop_ratio"] = round(wait_ms / idle_ms, 3) if idle_ms and wait_ms else None
        idle_cpu, wait_cpu = result["idle"]["cpu_ms_per_s"], waiting["cpu_ms_per_s"]
        result["cpu_ratio"] = round(wait_cpu / idle_cpu, 3) if idle_cpu else None
        say(f"{db_kind}: waiting {waiting}; loop ratio {result['loop_ratio']}")
    finally:
        stop.set()
        try:
            await asyncio.wait_for(scheduler, 30)
        except (TimeoutError, Exception) as e:  # the figures are in; say why the stop was not clean
            say(f"scheduler stop: {type(e).__name__}: {e}")
        executor.send_signal(signal.SIGTERM)
        try:
            executor.wait(60)
        except subprocess.TimeoutExpired:
            executor.kill()
        log_file.close()
        clock.close()
        await engine.dispose()
        if mysql_name:
            await drop_database(mysql_name)
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sensors", type=int, default=1000)
    p.add_argument("--per-dag", type=int, default=100)
    p.add_argument("--pool-slots", type=int, default=32)
    p.add_argument("--db", default="sqlite,mariadb")
    p.add_argument("--window", type=float, default=30)
    p.add_argument("--settle", type=float, default=15, help="seconds between the last first poke and the window")
    p.add_argument("--first-poke-timeout", type=float, default=900)
    p.add_argument("--profile", metavar="PATH", help="profile the waiting window (pyinstrument): PATH.<db>.txt")
    p.add_argument("--keep", action="store_true", help="keep the work folder and its executor.log")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    machine = describe_machine()
    say(f"machine: {machine}")
    results: dict[str, Any] = {"machine": machine}
    for db in args.db.split(","):
        results[db] = asyncio.run(run_db(args, db))
        print(f"{db}: {json.dumps(results[db])}", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
