"""Every ended try's local log is marked complete, whatever happened to the executor that launched it.

The executor runs as a process of its own here, so it can be killed as kill -9 kills it: a graceful
stop of the local backend would stop its runners too. Its runner carries on, finishes its task while
no executor runs, reports to the executor started after it, and marks its own log complete.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from spinner.logpaths import complete_marker, local_log_path

from .conftest import PARTITION, Stack
from .service_processes import serving

DAG_SOURCE = """
from spinner import DAG, BashOperator, Tier

with DAG(dag_id="orphaned", tier=Tier.TIER1) as dag:
    BashOperator(task_id="t", bash_command="echo uid $(id -u); sleep 3; echo done")
"""


def start_executor_process(stack: Stack, out: Path) -> subprocess.Popen[bytes]:
    """The executor as its own process, with the in-process one's home (its runner-token key), port,
    database and DAG user."""
    assert stack.executor_settings is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
    env.update(
        SPINNER_HOME=str(stack.home), SPINNER_DATABASE_URL=stack.db_url, SPINNER_POLL_INTERVAL="0.2",
        SPINNER_RUNNER_HEARTBEAT_INTERVAL="1", SPINNER_FERNET_KEY=os.environ["SPINNER_FERNET_KEY"],
        SPINNER_DAG_USER=stack.executor_settings.dag_user,
    )  # fmt: skip
    with open(out, "wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "spinner.cli.main", "executor", "--port", str(stack.executor_settings.port)],
            env=env, stdout=f, stderr=subprocess.STDOUT,
        )  # fmt: skip


# A fixed port: the restarted executor answers the runner where the first one did. As the DAG user, the
# runner cannot write in the log folder: its keeper (root, spinner/runner/keeper.py) marks the log for it.
@pytest.mark.parametrize(
    "dag_user",
    [
        pytest.param(user, marks=pytest.mark.executor_settings(port="free", dag_user=user), id=user)
        for user in ("same", "nobody")
    ],
)
async def test_a_try_that_ends_while_no_executor_runs_still_marks_its_log_complete(
    stack: Stack, tmp_path: Path, dag_user: str
) -> None:
    stack.write_dag(f"{PARTITION}/team/orphaned.py", DAG_SOURCE)
    await stack.publish()
    await stack.wait_dag("orphaned")
    await stack.stop_executor()  # nothing runs yet: the executor of this test is a process of its own
    executor_out = tmp_path / "executor.out"
    executor = start_executor_process(stack, executor_out)
    log = Path()
    pid = 0

    def seen() -> str:
        text = log.read_text(errors="replace") if log.is_file() else "(no log file)"
        return f"\n--- the try's log:\n{text}\n--- the killed executor's output:\n{executor_out.read_text(errors='replace')}"

    try:
        await stack.wait_for(lambda: serving(stack.executor_address), 30, "the executor process serving")
        run_id = await stack.trigger("orphaned")
        log = local_log_path(stack.home / "logs", "orphaned", run_id, "t", 1)

        async def running() -> bool:
            return (await stack.states("orphaned", run_id)).get("t") == "running"

        await stack.wait_for(running, 30, "the try running")
        pid = (await stack.tis("orphaned", run_id))["t"].pid or 0
        await stack.wait_for(lambda: "running BashOperator orphaned.t" in log.read_text(), 30, "the task executing")
        executor.kill()  # kill -9 while the task sleeps: no shutdown, the runner is not stopped
        executor.wait(10)

        def task_ended() -> bool:  # while no executor runs: its runner cannot report (its XCom, its end), and retries
            lines = log.read_text(errors="replace").splitlines()
            return "done" in lines and any("UNAVAILABLE); retrying" in x for x in lines[lines.index("done") :])

        await stack.wait_for(task_ended, 30, "the task ended, its runner retrying to report")
        assert not complete_marker(log).exists(), seen()
        await stack.start_executor()

        async def ended() -> bool:
            return (await stack.states("orphaned", run_id)).get("t") == "success"

        await stack.wait_for(ended, 60, "the try ended success")
        await stack.wait_for(complete_marker(log).exists, 20, "the log's completion marker")
        lines = log.read_text().splitlines()
        assert "done" in lines, seen()
        assert f"uid {65534 if dag_user == 'nobody' else os.getuid()}" in lines, seen()
        assert lines[-1].endswith("try 1 ended: success"), seen()  # the runner's last line: nothing after it
        assert complete_marker(log).stat().st_size == 0  # the marker the executor writes: an empty file
        pid = 0
    except AssertionError as e:
        raise AssertionError(f"{e}{seen()}") from None
    finally:
        if executor.poll() is None:
            executor.kill()
            executor.wait(10)
        if pid:  # the test failed with the orphaned runner alive: it must not outlive the test
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
