"""A whole Spinner on its own event loop in a thread: dagsync snapshot, executor, scheduler, logs, gateway.

For clients that block (schemathesis, Playwright's sync API, the CLI): they talk to it over
real sockets while it runs. The executor's backend is a parameter: "instant" tries succeed at
once, "local" runs real task processes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gateway.__main__ import serve as serve_gateway
from services.dagsync.__main__ import serve as serve_dagsync
from services.executor.__main__ import serve as serve_executor
from services.logs.__main__ import serve as serve_logs
from services.scheduler.__main__ import serve as serve_scheduler
from spinner.config import DagSyncSettings, ExecutorSettings, GatewaySettings, LogsSettings, SchedulerSettings
from spinner.db import auth as db_auth
from spinner.db.engine import create_engine, session_factory
from spinner.db.migrate import upgrade
from spinner.telemetry import setup_telemetry

ROOT = Path(__file__).resolve().parents[3]
PARTITION = "spinner_tier_1_0"
ADMIN_PASSWORD = "admin-password-1"

TEAM_DAG = """
from spinner import DAG, BashOperator, Tier
with DAG("team_dag", tier=Tier.TIER1, schedule=None, tags=["team"], owner="team-a",
         access_control={"team-a": {"can_dag_edit"}}) as dag:
    BashOperator(task_id="hello", bash_command="echo hello from team_dag")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Live:
    url: str
    grpc_address: str
    home: Path
    admin_token: str
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    # The internal services' gRPC addresses: executor, logs, scheduler, dagsync.
    services: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, token: str | None = None, **kwargs: object) -> httpx.Response:
        token = token or self.admin_token
        return httpx.request(
            method, self.url + "/api/v1" + path, headers={"authorization": f"Bearer {token}"}, timeout=30, **kwargs
        )  # type: ignore[arg-type]

    def wait_idle(self, dag_ids: tuple[str, ...], timeout: float = 90) -> None:
        """Until no run of these DAGs is queued or running: stopping then leaves no task process behind."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [
                r for d in dag_ids for r in self.api("GET", f"/dags/{d}/runs").json().get("runs", [])
                if r["state"] in ("queued", "running")
            ]  # fmt: skip
            if not busy:
                return
            time.sleep(0.2)
        raise AssertionError(f"runs still going after {timeout} s: {busy}")

    def user(self, username: str, roles: list[str], password: str) -> str:
        """Creates a user through the API (as the admin) and returns a token of theirs."""
        r = self.api("POST", "/users", json={"username": username, "roles": roles, "password": password})
        assert r.status_code == 201, r.text
        r = self.api("POST", f"/users/{username}/tokens", json={"name": "test"})
        assert r.status_code == 201, r.text
        self.tokens[username] = r.json()["token"]
        return self.tokens[username]


async def _wait(check: object, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _run(
    home: Path, backend: str, extra_dags: dict[str, str], started: list[Live], failed: list[BaseException]
) -> None:
    try:
        await _serve(home, backend, extra_dags, started)
    except BaseException as e:  # reported to the test's thread, which raises it
        failed.append(e)


async def _serve(home: Path, backend: str, extra_dags: dict[str, str], started: list[Live]) -> None:
    db_url = f"sqlite+aiosqlite:///{home / 'spinner.db'}"
    engine = create_engine(db_url)
    await upgrade(engine)
    async with session_factory(engine)() as s, s.begin():
        await db_auth.ensure_defaults(s)
        admin = await db_auth.create_user(s, "admin", password=ADMIN_PASSWORD, roles=[db_auth.ADMIN_ROLE], now=utcnow())
        token = await db_auth.create_token(s, admin.id, "test", utcnow())
    await engine.dispose()

    repo = home / "repo"
    shutil.copytree(ROOT / "examples" / "dags" / "plugins", repo / "plugins")
    shutil.copytree(ROOT / "examples" / "dags" / PARTITION, repo / PARTITION)
    (repo / PARTITION / "team").mkdir()
    (repo / PARTITION / "team" / "team_dag.py").write_text(textwrap.dedent(TEAM_DAG))
    for name, source in extra_dags.items():
        (repo / PARTITION / "team" / name).write_text(textwrap.dedent(source))

    common = {"home": home, "database_url": db_url, "poll_interval": 0.2}
    telemetry = setup_telemetry("test", ExecutorSettings(home=home))
    stop = asyncio.Event()
    ready: dict[str, str] = {}

    def on(name: str) -> object:
        return lambda address: ready.__setitem__(name, address)

    tasks = [
        asyncio.create_task(
            serve_executor(
                # A test's tasks end with it (local_tries_on_stop).
                ExecutorSettings(
                    port=0, backend=backend, runner_heartbeat_interval=1, local_tries_on_stop="stop", **common
                ),  # type: ignore[arg-type]
                stop,
                ready=on("executor"),  # type: ignore[arg-type]
                telemetry=telemetry,
            )
        ),
        asyncio.create_task(serve_logs(LogsSettings(port=0, **common), stop, ready=on("logs"))),  # type: ignore[arg-type]
        # Its first sync is done before it says it is ready: the scheduler then finds the DAG files.
        asyncio.create_task(
            serve_dagsync(
                DagSyncSettings(port=0, source_dir=repo, **common),  # type: ignore[arg-type]
                stop,
                ready=on("dagsync"),  # type: ignore[arg-type]
                telemetry=telemetry,
            )
        ),
    ]
    try:
        await _wait(lambda: {"executor", "logs", "dagsync"} <= set(ready), 30, "executor, logs and dagsync")
        sched = SchedulerSettings(partition=PARTITION, port=0, executor_address=ready["executor"], **common)  # type: ignore[arg-type]
        tasks.append(asyncio.create_task(serve_scheduler(sched, stop, ready=on("scheduler"), telemetry=telemetry)))  # type: ignore[arg-type]
        grpc_port = _free_port()
        gw = GatewaySettings(
            http_port=0, grpc_port=grpc_port, logs_address=ready["logs"], dagsync_address=ready["dagsync"], **common
        )  # type: ignore[arg-type]
        tasks.append(asyncio.create_task(serve_gateway(gw, stop, ready=on("gateway"), telemetry=telemetry)))  # type: ignore[arg-type]
        await _wait(lambda: {"scheduler", "gateway"} <= set(ready) or any(t.done() for t in tasks), 60, "services")
        for t in tasks:
            if t.done():
                await t
        live = Live(ready["gateway"], f"127.0.0.1:{grpc_port}", home, token, asyncio.get_running_loop(), stop)
        live.services.update((name, ready[name]) for name in ("executor", "logs", "scheduler", "dagsync"))
        started.append(live)
        await stop.wait()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        telemetry.shutdown()


@contextmanager
def live_spinner(
    home: Path,
    backend: str = "instant",
    dags: tuple[str, ...] = ("tutorial", "team_dag"),
    extra_dags: dict[str, str] | None = None,
) -> Iterator[Live]:
    """`extra_dags`: more DAG files (name -> source) beside team_dag; list their DAG ids in `dags` too."""
    started: list[Live] = []
    failed: list[BaseException] = []
    run = _run(home, backend, extra_dags or {}, started, failed)
    thread = threading.Thread(target=asyncio.run, args=(run,), daemon=True)
    thread.start()
    try:
        deadline = 90.0
        step = 0.1
        waited = 0.0
        while not started:
            if failed:
                raise failed[0]
            if waited > deadline or not thread.is_alive():
                raise AssertionError("the live Spinner did not start")
            threading.Event().wait(step)
            waited += step
        live = started[0]
        for dag_id in dags:  # parsed by the scheduler
            for _ in range(600):
                if live.api("GET", f"/dags/{dag_id}").status_code == 200:
                    break
                threading.Event().wait(0.1)
            else:
                raise AssertionError(f"DAG {dag_id} never appeared")
        yield live
        if backend == "local":  # real task processes: let them end (instant tries leave none behind)
            live.wait_idle(dags)
    finally:
        if started and started[0]._loop is not None and started[0]._stop is not None:
            started[0]._loop.call_soon_threadsafe(started[0]._stop.set)
        thread.join(60)
