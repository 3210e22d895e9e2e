"""DAG sync benchmark: a bundle of N DAG files in S3 (moto's server), a real dagsync and the owning scheduler.

    python bench/dagsync.py [--files 10000] [--owned 100] [--changes 20] [--modes mqtt,poll]
                            [--db sqlite|mariadb] [--json]

Everything runs as real processes: moto's S3 server, `spinner dagsync` (S3 source, default
interval unless --sync-interval), `spinner scheduler` for the partition that owns the
changed file (it holds --owned of the N files; the other partitions have no scheduler, so
the setup does not spend minutes parsing files the measurement does not need), and
`spinner dags push` as a CI job would run it. Figures:

- push: wall time of `spinner dags push` (process start to exit) when one file changed;
- propagation: from the end of that push until the owning scheduler has written the new
  serialized DAG to the database (p50/p95 over --changes changes), split into push ->
  snapshot switched and snapshot -> serialized DAG;
  modes: `mqtt` (the push announces itself on the broker, dagsync and the scheduler wake
  at once) and `poll` (no broker: dagsync polls every interval, the scheduler every second);
- idle poll: one poll when nothing changed (a conditional GET answered 304), for bundles of
  100 and N files, and the CPU the idle dagsync process uses per poll.

With --json the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
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

from sqlalchemy import select

from bench.machine import cpu_seconds
from services.dagsync.engine import DagSync
from services.dagsync.snapshots import SnapshotStore
from services.dagsync.sources import S3Source
from spinner.bundles import S3Location, s3_client
from spinner.db.engine import create_engine, session_factory
from spinner.db.migrate import upgrade
from spinner.db.models import SerializedDagModel
from spinner.events import NullBus

MYSQL = os.environ.get("SPINNER_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306")
MQTT = os.environ.get("SPINNER_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
OWNER = "spinner_tier_1_0"
PROBE = f"{OWNER}/bench/probe.py"
PHASE = random.Random(5)


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        "max": round(max(values), 3) if values else None,
        "mean": round(statistics.fmean(values), 3) if values else None,
    }


def dag_source(dag_id: str, tier: int, description: str = "") -> str:
    return (
        "from spinner import DAG, BashOperator, Tier\n"
        f"with DAG(dag_id={dag_id!r}, tier={tier}, schedule=None, description={description!r}) as dag:\n"
        "    BashOperator(task_id='hello', bash_command='echo hello')\n"
    )


def write_repo(repo: Path, files: int, owned: int) -> None:
    """`owned` files in the owning partition (the probe among them), the rest in nine other partitions."""
    others = [f"spinner_tier_{t}_{k}" for t in (1, 2, 3) for k in range(4)][1:10]
    (repo / "plugins").mkdir(parents=True, exist_ok=True)
    (repo / "plugins" / "bench_helpers.py").write_text("HELLO = 'hello'\n")
    (repo / PROBE).parent.mkdir(parents=True, exist_ok=True)
    (repo / PROBE).write_text(dag_source("probe", 1, "rev 0"))
    for i in range(files - 2):  # the plugin and the probe count too
        if i < owned - 1:
            folder, tier = OWNER, 1
        else:
            folder = others[i % len(others)]
            tier = int(folder.split("_")[2])
        path = repo / folder / f"team_{i % 20}" / f"dag_{i:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dag_source(f"dag_{i:05d}", tier))


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port} after {timeout} s")


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.repo = work / "repo"
        self.moto_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.moto_port}"
        self.location = S3Location(bucket="spinner-bench", prefix="dags", endpoint_url=self.endpoint)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
        self.env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", SPINNER_LOG_LEVEL="WARNING")
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        self.log = open(work / "services.log", "wb")  # closed at the end of main_async
        self.procs: list[subprocess.Popen[bytes]] = []
        self.cli = [sys.executable, "-m", "spinner.cli.main"]

    def spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
        targets = procs if procs is not None else list(self.procs)
        for p in targets:
            p.send_signal(signal.SIGTERM)
        for p in targets:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
            self.procs.remove(p)

    def push(self, mqtt: bool) -> float:
        argv = [*self.cli, "dags", "push", str(self.repo), "--bucket", self.location.bucket, "--prefix",
                self.location.prefix, "--endpoint-url", self.endpoint]  # fmt: skip
        if mqtt:
            argv += ["--mqtt-url", MQTT]
        started = time.perf_counter()
        done = subprocess.run(argv, env=self.env, capture_output=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"push failed: {done.stderr.decode()[-2000:]}")
        return time.perf_counter() - started


async def new_database(kind: str, home: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{home / 'spinner.db'}", None
    import aiomysql
    from sqlalchemy.engine import make_url

    base = make_url(MYSQL)
    name = f"spinner_bench_dagsync_{os.getpid()}"
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


async def idle_poll(location: S3Location, root: Path, polls: int) -> dict[str, Any]:
    """Latency of one idle poll (conditional GET -> 304) and of an unconditional manifest read, for comparison."""
    async with s3_client(location) as client:
        sync = DagSync(S3Source(client, location), SnapshotStore(root), NullBus(), keep=2,
                       clock=lambda: dt.datetime.now(dt.UTC))  # fmt: skip
        await sync.sync_once()
        times = []
        cpu_started = time.process_time()
        for _ in range(polls):
            started = time.perf_counter()
            changed = await sync.sync_once()
            times.append((time.perf_counter() - started) * 1000)
            assert not changed
        cpu_ms = (time.process_time() - cpu_started) * 1000 / polls
        full = []
        for _ in range(max(polls // 10, 3)):
            started = time.perf_counter()
            response = await client.get_object(Bucket=location.bucket, Key=f"{location.prefix}/manifest.json")
            async with response["Body"] as body:
                size = len(await body.read())
            full.append((time.perf_counter() - started) * 1000)
    return {
        "idle_poll_ms": summary(times),
        "idle_poll_client_cpu_ms": round(cpu_ms, 3),
        "full_manifest_read_ms": summary(full),
        "manifest_bytes": size,
    }


async def propagation(
    bench: Bench, mode: str, sessions: Any, home: Path, changes: int, rev: list[int], client: Any, measure_cli: bool
) -> dict[str, Any]:
    """`measure_cli`: time the push as the `spinner dags push` process, else in this process (exact publish time)."""
    from spinner.cli.push import _notify, push

    pushes, to_snapshot, to_serialized, total = [], [], [], []
    current = home / "snapshots" / "current"
    for _ in range(changes):
        async with sessions() as s:
            before = (
                await s.execute(select(SerializedDagModel.dag_hash).where(SerializedDagModel.dag_id == "probe"))
            ).scalar_one()
        old_version = os.readlink(current)
        rev[0] += 1
        (bench.repo / PROBE).write_text(dag_source("probe", 1, f"rev {rev[0]}"))
        # A random phase against dagsync's poll interval, so that "poll" samples every point of it.
        await asyncio.sleep(0.3 + PHASE.uniform(0, bench.args.sync_interval or 5.0))
        push_s = await asyncio.to_thread(bench.push, mode == "mqtt") if measure_cli else 0.0
        if not measure_cli:
            started = time.perf_counter()
            await push(bench.repo, bench.location, client)
            if mode == "mqtt":
                await _notify(MQTT, "default", "")
            push_s = time.perf_counter() - started
        pushed = time.perf_counter()
        switched = None
        deadline = pushed + 60
        while time.perf_counter() < deadline:
            if switched is None and os.readlink(current) != old_version:
                switched = time.perf_counter()
            async with sessions() as s:
                now = (
                    await s.execute(select(SerializedDagModel.dag_hash).where(SerializedDagModel.dag_id == "probe"))
                ).scalar_one()
            if now != before:
                break
            await asyncio.sleep(0.02)
        else:
            raise SystemExit(f"{mode}: the change was not serialized within 60 s")
        done = time.perf_counter()
        switched = switched or done
        pushes.append(push_s)
        to_snapshot.append(switched - pushed)
        to_serialized.append(done - switched)
        total.append(done - pushed)
        say(f"{mode}: push {push_s:.2f}s, propagation {done - pushed:.2f}s (snapshot {switched - pushed:.2f}s)")
    return {
        "push_s": summary(pushes),
        "propagation_s": summary(total),
        "push_to_snapshot_s": summary(to_snapshot),
        "snapshot_to_serialized_s": summary(to_serialized),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="spinner-bench-dagsync-"))
    bench = Bench(args, work)
    home = work / "home"
    home.mkdir()
    url, mysql_name = await new_database(args.db, home)
    engine = create_engine(url)
    await upgrade(engine)
    sessions = session_factory(engine)
    result: dict[str, Any] = {"files": args.files, "owned": args.owned, "db": args.db, "changes": args.changes}
    try:
        bench.spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(bench.moto_port)], bench.env)
        wait_port(bench.moto_port)
        async with s3_client(bench.location) as client:
            await client.create_bucket(Bucket=bench.location.bucket)
        write_repo(bench.repo, args.files, args.owned)
        say(f"pushing {args.files} files")
        result["initial_push_s"] = round(await asyncio.to_thread(bench.push, False), 2)
        say(f"initial push took {result['initial_push_s']} s")

        small = S3Location(bucket=bench.location.bucket, prefix="small", endpoint_url=bench.endpoint)
        small_repo = work / "small"
        write_repo(small_repo, 100, 100)
        async with s3_client(small) as client:
            from spinner.cli.push import push

            await push(small_repo, small, client)
        result["idle_poll"] = {
            "files_100": await idle_poll(small, work / "idle-small", args.polls),
            f"files_{args.files}": await idle_poll(bench.location, work / "idle-big", args.polls),
        }
        say(f"idle poll: {json.dumps(result['idle_poll'])}")

        rev = [0]
        for mode in [m for m in args.modes.split(",") if m in ("mqtt", "poll")]:
            env = dict(bench.env)
            env.update(SPINNER_HOME=str(home), SPINNER_DATABASE_URL=url, SPINNER_DAGS_BUCKET=bench.location.bucket,
                       SPINNER_DAGS_PREFIX=bench.location.prefix, SPINNER_S3_ENDPOINT_URL=bench.endpoint,
                       SPINNER_EXECUTOR_ADDRESS=f"127.0.0.1:{free_port()}")  # fmt: skip
            if args.sync_interval:
                env["SPINNER_SYNC_INTERVAL"] = str(args.sync_interval)
            if mode == "mqtt":
                env["SPINNER_MQTT_URL"] = MQTT
            dagsync_port = free_port()
            started = time.perf_counter()
            dagsync = bench.spawn([*bench.cli, "dagsync", "--port", str(dagsync_port)], env)
            for _ in range(4500):  # 900 s
                if (home / "snapshots" / "current").is_symlink():
                    break
                await asyncio.sleep(0.2)
            say(f"{mode}: dagsync has the {args.files} files after {time.perf_counter() - started:.1f} s")
            result.setdefault("first_sync_s", round(time.perf_counter() - started, 1))
            scheduler = bench.spawn([*bench.cli, "scheduler", "--partition", OWNER, "--port", "0"], env)
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                async with sessions() as s:
                    got = (
                        await s.execute(select(SerializedDagModel.dag_id).where(SerializedDagModel.partition == OWNER))
                    ).all()
                if len(got) >= args.owned:
                    break
                await asyncio.sleep(1)
            say(f"{mode}: scheduler parsed its {args.owned} files")
            if mode == args.modes.split(",")[0]:
                cpu_before, t_before = cpu_seconds(dagsync.pid), time.monotonic()
                await asyncio.sleep(args.idle_seconds)
                cpu = cpu_seconds(dagsync.pid) - cpu_before
                interval = args.sync_interval or 5.0
                polls = (time.monotonic() - t_before) / interval
                result["idle_dagsync_cpu_ms_per_poll"] = round(cpu * 1000 / max(polls, 1), 2)
                result["idle_dagsync_cpu_percent"] = round(cpu * 100 / (time.monotonic() - t_before), 3)
            async with s3_client(bench.location) as client:
                # The push process's own time first (what a CI job waits for), then the propagation from the
                # moment a push has published (its manifest written, announced in mqtt mode).
                # Untimed: the scheduler of this phase holds the lease and has parsed the partition once.
                await propagation(bench, mode, sessions, home, 1, rev, client, False)
                cli = await propagation(bench, mode, sessions, home, args.cli_pushes, rev, client, True)
                result[mode] = await propagation(bench, mode, sessions, home, args.changes, rev, client, False)
                result[mode]["push_cli_s"] = cli["push_s"]
            bench.stop([scheduler, dagsync])
    finally:
        bench.stop()
        bench.log.close()
        await engine.dispose()
        if mysql_name:
            await drop_database(mysql_name)
        if args.keep_work:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=10_000, help="DAG files in the bundle")
    p.add_argument("--owned", type=int, default=100, help="of those, in the owning scheduler's partition")
    p.add_argument("--changes", type=int, default=20, help="changes measured per mode")
    p.add_argument("--cli-pushes", type=int, default=5, help="pushes timed as `spinner dags push` processes per mode")
    p.add_argument("--modes", default="mqtt,poll", help="mqtt (pushes announced), poll (no broker); none: idle only")
    p.add_argument("--sync-interval", type=float, default=0.0, help="dagsync's interval (default: its default)")
    p.add_argument("--polls", type=int, default=100, help="idle polls timed per bundle size")
    p.add_argument("--idle-seconds", type=float, default=30.0, help="how long the idle dagsync's CPU is measured")
    p.add_argument("--db", choices=["sqlite", "mariadb"], default="sqlite")
    p.add_argument("--keep-work", action="store_true", help="keep the work folder (logs) afterwards")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line at the end")
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    for mode in ("mqtt", "poll"):
        if mode in result:
            r = result[mode]
            print(f"{mode}: push of one changed file p50 {r['push_cli_s']['p50']} s (CLI), {r['push_s']['p50']} s (in process); propagation p50 "
                  f"{r['propagation_s']['p50']} s, p95 {r['propagation_s']['p95']} s, max {r['propagation_s']['max']} s")  # fmt: skip
    for size, figures in result["idle_poll"].items():
        print(f"idle poll, {size}: p50 {figures['idle_poll_ms']['p50']} ms, {figures['idle_poll_client_cpu_ms']} ms CPU (a full manifest read: "
              f"{figures['full_manifest_read_ms']['p50']} ms, {figures['manifest_bytes']} bytes)")  # fmt: skip
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
