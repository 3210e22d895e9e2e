"""The local backend's fork server: runners forked from a warm parent, and what happens when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from .conftest import PARTITION, Stack

DAG_SOURCE = """
from spinner import DAG, BashOperator, PythonOperator, Tier

def shout():
    print("printed by a forked runner")

with DAG(dag_id="forked", tier=Tier.TIER1) as dag:
    slow = BashOperator(task_id="slow", bash_command="sleep 2; echo slept")
    PythonOperator(task_id="shout", python_callable=shout)
"""


def fork_servers() -> list[int]:
    """The runners' fork servers (the scheduler's parser has its own, which preloads no runner)."""
    out = subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "spinner.forkserver .*spinner.runner.main"],
                         capture_output=True, text=True)  # fmt: skip
    return [int(p) for p in out.stdout.split()]


async def test_runners_are_forked_and_survive_the_fork_server_dying(stack: Stack) -> None:
    stack.write_dag(f"{PARTITION}/team/forked.py", DAG_SOURCE)
    await stack.publish()
    await stack.wait_dag("forked")
    first = await stack.trigger("forked", run_id="first")

    async def slow_running() -> bool:
        return (await stack.states("forked", first)).get("slow") == "running"

    await stack.wait_for(slow_running, 30, "slow running")
    servers = fork_servers()
    assert len(servers) == 1  # tries start from the executor's one warm fork server
    os.kill(servers[0], signal.SIGKILL)  # the fork server dies while its child runs
    run = await stack.wait_run("forked", first, timeout=60)
    assert run.state == "success"  # the orphaned runner still reported its end
    tis = await stack.tis("forked", first)
    assert tis["slow"].state == tis["shout"].state == "success"

    second = await stack.trigger("forked", run_id="second")  # a new fork server takes over
    assert (await stack.wait_run("forked", second, timeout=60)).state == "success"
    from spinner.logpaths import local_log_path

    log = local_log_path(stack.home / "logs", "forked", second, "shout", 1).read_text()
    assert "printed by a forked runner" in log


async def test_a_local_task_sees_its_own_token_and_none_of_the_platforms_settings(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor's environment has the database URL and its home; a task it runs has only its try's
    token of Spinner's variables (issue 14: local tasks got SPINNER_DATABASE_URL)."""
    monkeypatch.setenv("SPINNER_DATABASE_URL", "mysql+aiomysql://spinner:secret@db/spinner")
    monkeypatch.setenv("SPINNER_HOME", str(stack.home))
    monkeypatch.setenv("TEAM_SETTING", "kept")
    seen = tmp_path / "env.txt"
    stack.write_dag(
        f"{PARTITION}/team/env_probe.py",
        f"""
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="env_probe", tier=Tier.TIER1) as dag:
    BashOperator(task_id="t", bash_command="env | sort > {seen}")
""",
    )
    await stack.publish()
    await stack.wait_dag("env_probe")
    run_id = await stack.trigger("env_probe")
    assert (await stack.wait_run("env_probe", run_id)).state == "success"
    names = {line.split("=", 1)[0] for line in seen.read_text().splitlines() if "=" in line}
    assert "TEAM_SETTING" in names and "SPINNER_RUNNER_TOKEN" in names
    leaked = sorted(n for n in names if n.startswith("SPINNER_") and n not in RUNNER_OWN)
    assert not leaked, leaked


# What the executor hands a runner itself (services/executor/engine.py): its try, not the platform's.
RUNNER_OWN = {
    "SPINNER_RUNNER_TOKEN", "SPINNER_LOG_PATH", "SPINNER_XCOM_MAX_BYTES", "SPINNER_DATABASE_RETRY_TIMEOUT",
    "SPINNER_LOGS_BUCKET", "SPINNER_LOGS_PREFIX", "SPINNER_ES_HOSTS", "SPINNER_ES_INDEX_PATTERN",
    "SPINNER_ES_BUFFER_LINES", "SPINNER_S3_ENDPOINT_URL", "SPINNER_S3_REGION", "SPINNER_HEARTBEAT",
    "SPINNER_REQUIREMENTS",
}  # fmt: skip


KEPT_SOURCE = """
import os
from spinner import DAG, BashOperator, PythonOperator, Tier

SECRETS = {secrets!r}

def probe(tag):
    seen = []
    for path in SECRETS:
        try:
            open(path, "rb").read()
            seen.append("READ " + path)
        except OSError as e:
            seen.append("refused " + type(e).__name__)
    open("scratch.txt", "w").write("x")  # its working directory is its own
    print(tag, "uid", os.getuid(), "cwd", os.getcwd(), "|", ", ".join(seen))

def on_success(context):
    probe("callback")

with DAG(dag_id="kept", tier=Tier.TIER1, on_success_callback=on_success) as dag:
    python = PythonOperator(task_id="python", python_callable=probe, op_args=["task"])
    bash = BashOperator(task_id="bash", bash_command="echo bash uid $(id -u) in $(pwd)")
    python >> bash
"""


def _check_kept_tries(home: Path, run_id: str, state: str) -> None:
    from spinner.logpaths import local_log_path

    paths = {task: local_log_path(home / "logs", "kept", run_id, task, 1) for task in ("python", "bash")}
    logs = {task: p.read_text(errors="replace") if p.exists() else "(no log)" for task, p in paths.items()}
    assert state == "success", logs
    task_line = next(line for line in logs["python"].splitlines() if line.startswith("task uid"))
    assert task_line.startswith("task uid 65534 cwd /tmp/spinner-try-"), task_line
    assert task_line.endswith("| refused PermissionError, refused PermissionError"), task_line
    assert not Path(task_line.split()[4]).exists()  # the try's own folder went with it
    assert "bash uid 65534 in /tmp/" in logs["bash"], logs["bash"]  # a command runs in a folder of its own
    for task, log in paths.items():
        assert log.read_text().splitlines()[-1].endswith("try 1 ended: success"), logs[task]


def _markers(home: Path, run_id: str) -> bool:
    """Both tries' logs marked complete: by their keepers, once the runners are gone (after their Finish)."""
    from spinner.logpaths import complete_marker, local_log_path

    return all(
        complete_marker(local_log_path(home / "logs", "kept", run_id, t, 1)).exists() for t in ("python", "bash")
    )


def _callback_line(home: Path) -> str:
    for path in (home / "logs").rglob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("callback uid"):
                return line
    return ""


@pytest.mark.executor_settings(dag_user="nobody")
async def test_local_tries_and_callbacks_run_as_the_dag_user(stack: Stack) -> None:
    """A root executor runs a try's DAG code as the DAG user (issue 14: local tasks ran as root, and read
    the platform's keys): through the fork server (tasks) and as a fresh process (a DAG callback). The
    snapshot in the 0700 home is still read, the log is still whole and marked complete."""
    secrets = [str(stack.home / "runner_token_key"), f"/proc/{os.getpid()}/environ"]  # both exist: readable by root
    stack.write_dag(f"{PARTITION}/team/kept.py", KEPT_SOURCE.format(secrets=secrets))
    await stack.publish()
    await stack.wait_dag("kept")
    run_id = await stack.trigger("kept")
    run = await stack.wait_run("kept", run_id)
    _check_kept_tries(stack.home, run_id, run.state)
    await stack.wait_for(lambda: _markers(stack.home, run_id), 30, "both logs marked complete")
    await stack.wait_for(lambda: bool(_callback_line(stack.home)), 30, "the DAG's success callback ran")
    line = _callback_line(stack.home)
    assert line.startswith("callback uid 65534 cwd /tmp/spinner-try-"), line
    assert line.endswith("| refused PermissionError, refused PermissionError"), line
