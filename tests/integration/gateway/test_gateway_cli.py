"""The gateway as its own `serve()` runs it (uvicorn + gRPC), driven by the `spinner` client commands."""

from __future__ import annotations

import asyncio
import io
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.__main__ import serve as serve_gateway
from services.logs.__main__ import serve as serve_logs
from spinner.cli.main import main
from spinner.config import GatewaySettings, LogsSettings
from spinner.logpaths import complete_marker, local_log_path

from .conftest import add_user, seed
from .test_mapped_tasks import seed_mapped


@dataclass
class Served:
    url: str
    log_dir: Path
    token: str

    async def spinner(self, *argv: str) -> int:
        """Runs the CLI in a thread: it blocks on HTTP while this loop serves the gateway."""
        return await asyncio.to_thread(main, [*argv, "--server", self.url, "--token", self.token])

    def write_log(self, task_id: str, text: str, *, done: bool) -> Path:
        path = local_log_path(self.log_dir, "dag_0", "manual__1", task_id, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(text)
        if done:
            complete_marker(path).touch()
        return path


async def _started(task: asyncio.Task[None], got: list[str]) -> str:
    while not got:
        if task.done():
            await task
            raise AssertionError("the service stopped at start")
        await asyncio.sleep(0.02)
    return got[0]


@pytest.fixture
async def served(db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Served]:
    await seed(sessions)
    token = await add_user(sessions, "admin", ["Admin"])
    stop = asyncio.Event()
    logs_ready: list[str] = []
    http_ready: list[str] = []
    logs_settings = LogsSettings(home=tmp_path, port=0, database_url=db_url)  # it reads whether a try has ended
    logs = asyncio.create_task(serve_logs(logs_settings, stop, ready=logs_ready.append))
    gateway: asyncio.Task[None] | None = None
    try:
        logs_address = await _started(logs, logs_ready)
        settings = GatewaySettings(
            home=tmp_path, database_url=db_url, http_port=0, grpc_port=0, logs_address=logs_address
        )
        gateway = asyncio.create_task(serve_gateway(settings, stop, ready=http_ready.append))
        yield Served(await _started(gateway, http_ready), tmp_path / "logs", token)
    finally:
        stop.set()
        await asyncio.gather(logs, *([gateway] if gateway else []))


async def test_dags_list_prints_a_table(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert await served.spinner("dags", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["DAG_ID", "PARTITION", "TIER", "SCHEDULE", "PAUSED"]
    assert [line.split() for line in lines[1:]] == [
        ["dag_0", "spinner_tier_1_0", "1", "@daily", "no"],
        ["dag_1", "spinner_tier_1_0", "1", "@daily", "no"],
        ["dag_2", "spinner_tier_1_0", "1", "@daily", "no"],
    ]
    # Columns line up: every row starts its partition where the header does.
    column = lines[0].index("PARTITION")
    assert all(line[column:].startswith("spinner_tier_1_0") for line in lines[1:])


async def test_dags_list_says_when_there_are_more(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert await served.spinner("dags", "list", "--limit", "2") == 0
    assert "(2 of 3 DAGs; use --limit)" in capsys.readouterr().out


async def test_runs_list(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert await served.spinner("runs", "list", "dag_0") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["RUN_ID", "STATE", "TYPE"]
    assert lines[1].split()[:3] == ["manual__1", "success", "manual"]


async def test_task_logs_prints_the_log(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    served.write_log("extract", "hello\nworld\n", done=True)
    assert await served.spinner("tasks", "logs", "dag_0", "manual__1", "extract") == 0
    assert capsys.readouterr().out == "hello\nworld\n"


async def test_task_logs_follow_until_the_try_ends(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    served.write_log("load", "first\n", done=False)
    follow = asyncio.create_task(served.spinner("tasks", "logs", "dag_0", "manual__1", "load", "--follow"))
    await asyncio.sleep(0.8)
    assert not follow.done()
    served.write_log("load", "second\n", done=True)
    assert await asyncio.wait_for(follow, 10) == 0
    assert capsys.readouterr().out == "first\nsecond\n"


async def test_task_logs_follow_ends_when_the_try_ended_without_marking_its_log(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    # `load` failed (the seeded row), and its runner was killed before it could mark its log complete.
    served.write_log("load", "partial\n", done=False)
    assert await asyncio.wait_for(served.spinner("tasks", "logs", "dag_0", "manual__1", "load", "--follow"), 60) == 0
    out = capsys.readouterr()
    assert out.out == "partial\n"
    assert "note: the try ended without its log being marked complete" in out.err, out.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runs", "list", "nope"], "error: DAG 'nope' not found"),
        (["dags", "trigger", "dag_0"], "error: no scheduler holds partition spinner_tier_1_0"),
        (["tasks", "logs", "dag_0", "manual__1", "load"], "error: no log for dag_0.load run manual__1 try 1"),
        (["runs", "list", "dag_0", "--limit", "0"], "error: limit must be between 1 and"),
    ],
)
async def test_gateway_errors_are_one_line(
    served: Served, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert await served.spinner(*argv) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert len(out.err.splitlines()) == 1 and out.err.startswith(message)


async def test_the_service_keeps_its_signal_handlers_while_serving(served: Served) -> None:
    # uvicorn's own handlers would stop the web server alone; the service's stop event decides.
    for sig in (signal.SIGTERM, signal.SIGINT):
        assert not isinstance(getattr(signal.getsignal(sig), "__self__", None), uvicorn.Server)


async def test_login_saves_a_token_the_other_commands_use(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPINNER_HOME", str(tmp_path / "cli-home"))
    monkeypatch.delenv("SPINNER_TOKEN", raising=False)
    assert await served.spinner("users", "create", "carol", "--role", "spinner-users") == 0
    password = capsys.readouterr().out.split("password (shown once): ")[1].strip()
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    argv = ["login", "--server", served.url, "--username", "carol", "--password-stdin"]
    assert await asyncio.to_thread(main, argv) == 0
    assert "logged in" in capsys.readouterr().out
    saved = json.loads((tmp_path / "cli-home" / "credentials.json").read_text())
    assert list(saved) == [served.url]
    assert (tmp_path / "cli-home" / "credentials.json").stat().st_mode & 0o777 == 0o600
    # No --token: the saved one is used, and carol may read but not trigger.
    assert await asyncio.to_thread(main, ["whoami", "--server", served.url]) == 0
    assert capsys.readouterr().out.strip() == "carol (roles: spinner-users)"
    assert await asyncio.to_thread(main, ["dags", "trigger", "dag_0", "--server", served.url]) == 1
    assert "carol may not trigger DAG 'dag_0'" in capsys.readouterr().err


async def test_without_a_token_the_cli_says_how_to_get_one(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPINNER_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("SPINNER_TOKEN", raising=False)
    assert await asyncio.to_thread(main, ["dags", "list", "--server", served.url]) == 1
    assert f"run `spinner login --server {served.url}`" in capsys.readouterr().err


async def test_admin_commands_for_users_roles_audit_and_refresh(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await served.spinner("roles", "set", "team-a", "-p", "can_dag_edit:dag_1") == 0
    assert await served.spinner("users", "create", "dave", "--role", "team-a") == 0
    assert await served.spinner("users", "update", "dave", "--active", "no") == 0
    capsys.readouterr()
    assert await served.spinner("users", "list") == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["dave"][:2] == ["team-a", "no"] and rows["admin"][:2] == ["Admin", "yes"]
    assert await served.spinner("roles", "list") == 0
    assert "can_dag_edit:dag_1" in capsys.readouterr().out
    assert await served.spinner("dags", "refresh", "dag_0") == 0
    assert "dag_0: access control refreshed" in capsys.readouterr().out
    assert await served.spinner("audit", "--user", "admin") == 0
    actions = [line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert actions[:4] == ["refresh", "user.update", "user.create", "role.put"]
    assert await served.spinner("roles", "set", "bad", "-p", "can_dag_edit") == 1
    assert "ACTION:DAG_ID" in capsys.readouterr().err


async def test_mapped_task_instances_by_map_index(
    served: Served, sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    await seed_mapped(sessions)
    assert await served.spinner("tasks", "list", "dag_0", "manual__1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["TASK_ID", "MAP_INDEX", "STATE"]
    assert [line.split()[:3] for line in lines[1:] if line.startswith("files")] == [
        ["files", "0", "success"], ["files", "1", "failed"], ["files", "2", "running"], ["files", "3", "success"],
    ]  # fmt: skip
    assert await served.spinner("tasks", "xcom", "dag_0", "manual__1", "files", "--map-index", "1", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"return_value": "b.csv"}
    assert await served.spinner("tasks", "rendered", "dag_0", "manual__1", "files", "--map-index", "1") == 0
    assert capsys.readouterr().out.splitlines() == [
        "# instance 1, try 2, rendered at 2026-06-01T12:00:00+00:00", "# ----- bash_command", "echo 1 (try 2)",
    ]  # fmt: skip
    assert await served.spinner("tasks", "logs", "dag_0", "manual__1", "files", "--map-index", "9") == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: task 'files' of run 'manual__1' has no instance with map_index 9 (its instances: 0..3)"]
