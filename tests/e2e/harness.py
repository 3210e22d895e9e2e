"""`spinner standalone` as real processes for end-to-end tests, on SQLite or MariaDB.

`start_standalone` starts it over a copy of examples/dags (plus extra files), waits until it
says it runs, and stops it afterwards. A `Spinner` speaks to it as a user does: the CLI with
the token standalone saved, and the REST API.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[2]
TERMINAL_RUN_STATES = ("success", "failed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Spinner:
    url: str
    home: Path
    proc: subprocess.Popen[str]
    output: Path
    dags: Path

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """The CLI as a user runs it: its token is the one standalone saved in SPINNER_HOME."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
        return subprocess.run(
            [sys.executable, "-m", "spinner.cli.main", *args, "--server", self.url],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**env, "SPINNER_HOME": str(self.home)},
        )

    @property
    def token(self) -> str:
        from spinner import credentials

        token = credentials.token_for(self.url, self.home)
        assert token, "standalone saved no CLI token"
        return token

    @property
    def admin_password(self) -> str:
        line = next(line for line in self.output.read_text().splitlines() if "Log in as admin with password" in line)
        return line.split("password ", 1)[1].split()[0]

    def _fail(self, what: str, e: Exception) -> AssertionError:
        state = "running" if self.proc.poll() is None else f"exited ({self.proc.returncode})"
        return AssertionError(f"{what}: {e!r}; standalone {state}; its output:\n{self.output.read_text()}")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return httpx.request(
                method, self.url + path, headers={"authorization": f"Bearer {self.token}"}, timeout=30, **kwargs
            )
        except httpx.TransportError as e:  # the gateway is gone: what standalone printed says why
            raise self._fail(f"{method} {path}", e) from e

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def api(self, path: str) -> Any:
        """GET /api/v1<path> as JSON; anything but 200 fails with the answer."""
        r = self.get("/api/v1" + path)
        assert r.status_code == 200, f"GET /api/v1{path}: {r.status_code} {r.text}"
        return r.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get(f"/api/v1/dags/{quote(dag_id, safe='')}").status_code == 200:
                return
            time.sleep(0.3)
        errors = self.get("/api/v1/import-errors").text
        raise AssertionError(f"DAG {dag_id} never appeared; import errors: {errors}")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Starts a run (REST, as the CLI does) and returns its run id."""
        self.wait_for_dag(dag_id)
        r = self.request("POST", f"/api/v1/dags/{quote(dag_id, safe='')}/runs", json={"conf": conf or {}})
        assert r.status_code in (200, 201), f"trigger {dag_id}: {r.status_code} {r.text}"
        return str(r.json()["run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120) -> dict[str, Any]:
        """Waits until the run has ended; returns {"run": ..., "tasks": {name: task instance}}, where a
        mapped task's instances are named "task_id[map_index]" and every other task by its task_id."""
        path = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
        deadline = time.monotonic() + timeout
        while True:
            run = self.api(path)
            if run["state"] in TERMINAL_RUN_STATES or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        tasks = {instance_name(ti): ti for ti in self.api(path + "/tasks")["task_instances"]}
        assert run["state"] in TERMINAL_RUN_STATES, f"run {run_id} still {run['state']} after {timeout} s: {tasks}"
        return {"run": run, "tasks": tasks}

    def run_dag(self, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 120) -> dict[str, Any]:
        """Triggers a run and waits for its end."""
        return self.wait_for_run(dag_id, self.trigger(dag_id, conf), timeout)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int | None = None
    ) -> str:
        args = ["tasks", "logs", dag_id, run_id, task_id]
        if try_number is not None:
            args += ["--try", str(try_number)]
        if map_index is not None:
            args += ["--map-index", str(map_index)]
        done = self.cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def states(self, result: dict[str, Any]) -> dict[str, str | None]:
        return {task_id: ti["state"] for task_id, ti in result["tasks"].items()}


def instance_name(ti: dict[str, Any]) -> str:
    """A task instance as tests name it: its task_id, with "[map_index]" for a mapped task's instance."""
    index = int(ti.get("map_index", -1))
    return f"{ti['task_id']}[{index}]" if index >= 0 else str(ti["task_id"])


def mariadb_url() -> tuple[str, str]:
    """A fresh MariaDB database for one standalone: (name, SQLAlchemy URL)."""
    from tests.conftest import _create_mysql_database

    return asyncio.run(_create_mysql_database())


def drop_mariadb(name: str) -> None:
    from tests.conftest import _drop_mysql_database

    asyncio.run(_drop_mysql_database(name))


def start_standalone(
    tmp_path: Path,
    *,
    mqtt_url: str = "",
    database_url: str = "",
    extra_files: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Spinner]:
    """Runs `spinner standalone` over a copy of examples/dags with `extra_files` (path -> text) added."""
    dags = tmp_path / "dags"
    shutil.copytree(ROOT / "examples" / "dags", dags)
    for rel, text in (extra_files or {}).items():
        (dags / rel).parent.mkdir(parents=True, exist_ok=True)
        (dags / rel).write_text(text)
    port = free_port()
    home = tmp_path / "home"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
    child_env["SPINNER_LOCAL_TRIES_ON_STOP"] = "stop"  # a test's tasks end with it (Spinner's default keeps them)
    if database_url:
        child_env["SPINNER_DATABASE_URL"] = database_url
    child_env.update(env or {})
    cmd = [sys.executable, "-m", "spinner.cli.main", "standalone", "--port", str(port), "--dags", str(dags),
           "--home", str(home)]  # fmt: skip
    if mqtt_url:
        cmd += ["--mqtt-url", mqtt_url]
    # Output goes to a file, not a pipe: nobody reads a pipe once started, and a full one blocks.
    out_path = tmp_path / "standalone.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, env=child_env, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while "Spinner is running" not in out_path.read_text():
            if proc.poll() is not None:
                raise AssertionError("standalone exited early:\n" + out_path.read_text())
            if time.monotonic() > deadline:
                raise AssertionError("standalone did not start:\n" + out_path.read_text())
            time.sleep(0.2)
        assert url in out_path.read_text()
        yield Spinner(url=url, home=home, proc=proc, output=out_path, dags=dags)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def standalone_on(
    db: str, tmp_path: Path, *, extra_files: dict[str, str] | None = None, env: dict[str, str] | None = None
) -> Iterator[Spinner]:
    """standalone on "sqlite" (its default, in its home) or on a fresh "mariadb" database, dropped afterwards.

    Use it from a module-scoped fixture parametrized over both, so one stack serves a module's tests:

        @pytest.fixture(scope="module", params=["sqlite", "mariadb"])
        def spinner(request, tmp_path_factory):
            yield from standalone_on(request.param, tmp_path_factory.mktemp(request.param))
    """
    if db == "sqlite":
        yield from start_standalone(tmp_path, extra_files=extra_files, env=env)
        return
    assert db == "mariadb", db
    name, url = mariadb_url()
    try:
        yield from start_standalone(tmp_path, database_url=url, extra_files=extra_files, env=env)
    finally:
        drop_mariadb(name)
