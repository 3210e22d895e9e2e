"""The local backend's fork server: runners forked from a warm parent, and what happens when it dies."""

from __future__ import annotations

import os
import signal
import subprocess

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
