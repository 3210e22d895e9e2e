"""A local try under its keeper (spinner/runner/keeper.py): the command runs as the DAG user, the keeper
(root) marks the log complete for it, makes and removes its working directory, and passes its code on.

Real processes, as the local backend starts them; these tests run as root (a DAG user needs root)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spinner.logpaths import LOG_PATH_ENV, complete_marker
from spinner.runner import keeper
from spinner.sandbox import DagUser, resolve_dag_user

PROBE = """
import os, sys
from spinner.runner.completion import LogEnd
print("uid", os.getuid(), "gid", os.getgid(), "groups", os.getgroups())
print("cwd", os.getcwd(), "home", os.environ["HOME"])
open("scratch.txt", "w").write("x")  # its working directory is its own
for path in sys.argv[1:]:
    try:
        open(path, "rb").read()
        print("READ", path)
    except OSError as e:
        print("refused", path, type(e).__name__)
print("pid", os.getpid(), "reports", os.environ["SPINNER_RUNNER_PID"], "keeper", os.getppid())
if os.environ.get("MARK"):
    LogEnd.from_environ(os.environ).mark()
raise SystemExit(int(os.environ.get("CODE", "0")))
"""


@pytest.fixture
def user() -> DagUser:
    found = resolve_dag_user("auto")
    assert found is not None and found.name == "nobody", "these tests run as root, whose DAG user is nobody"
    return found


def _secret_home(tmp_path: Path) -> Path:
    """A standalone-like home: 0700, a key in it (even one others could read: the home keeps them out)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "runner_token_key").write_text("the platform's key")
    (home / "runner_token_key").chmod(0o644)
    (home / "logs").mkdir()
    return home


def _keep(user: DagUser, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            keeper.argv_for(user, [sys.executable, "-c", PROBE, *args]),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={"PATH": os.environ.get("PATH", ""), LOG_PATH_ENV: str(log), **env},
        )  # fmt: skip


def _seen(log: Path) -> dict[str, list[str]]:
    lines = {}
    for line in log.read_text(errors="replace").splitlines():
        key, _, rest = line.partition(" ")
        lines.setdefault(key, []).append(rest)
    return lines


def test_a_kept_try_runs_as_the_dag_user_and_its_keeper_marks_the_log(user: DagUser, tmp_path: Path) -> None:
    home = _secret_home(tmp_path)
    log = home / "logs" / "attempt=1.log"
    key_file = home / "runner_token_key"
    proc = _keep(user, log, str(key_file), f"/proc/{os.getpid()}/environ", MARK="1")
    code = proc.wait(60)
    text = log.read_text(errors="replace")
    assert code == 0, text
    seen = _seen(log)
    assert seen["uid"] == [f"{user.uid} gid {user.gid} groups []"], text
    assert seen["refused"] == [f"{key_file} PermissionError", f"/proc/{os.getpid()}/environ PermissionError"], text
    assert "READ" not in seen, text
    cwd = Path(seen["cwd"][0].split()[0])
    assert seen["cwd"][0] == f"{cwd} home {cwd}", text  # its own folder is its HOME too
    assert not cwd.exists(), f"the try's working directory outlived it: {cwd}"
    pid, _, reported, _, keeper_pid = seen["pid"][0].split()
    assert reported == keeper_pid == str(proc.pid) != pid, text  # the executor knows the try by its keeper
    assert complete_marker(log).exists(), text  # the runner asked, the keeper (root) touched it
    assert complete_marker(log).stat().st_uid == 0


def test_a_kept_try_that_does_not_mark_its_log_passes_its_code_on(user: DagUser, tmp_path: Path) -> None:
    home = _secret_home(tmp_path)
    log = home / "logs" / "attempt=1.log"
    proc = _keep(user, log, CODE="3")
    assert proc.wait(60) == 3, log.read_text(errors="replace")
    assert not complete_marker(log).exists()  # a reschedule, a refused Start: the log goes on


def test_a_kept_try_stopped_with_its_group_ends_with_the_signal(user: DagUser, tmp_path: Path) -> None:
    home = _secret_home(tmp_path)
    log = home / "logs" / "attempt=1.log"
    sleeper = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(300)"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            keeper.argv_for(user, [sys.executable, "-c", sleeper]),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={LOG_PATH_ENV: str(log)},
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while "pid" not in _seen(log):
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text(errors="replace")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)  # as the executor stops a try: the keeper waits, the command goes
    assert proc.wait(30) == 128 + signal.SIGTERM, log.read_text(errors="replace")
    runner = int(_seen(log)["pid"][0])
    assert not Path(f"/proc/{runner}").exists() or "zombie" in Path(f"/proc/{runner}/status").read_text()


DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()  # a session of its own: a kill of the try's process group misses it
    if os.fork() == 0:
        print("daemon", os.getpid(), flush=True)
        time.sleep(300)
    os._exit(0)
time.sleep(0.5)
"""


def test_what_a_kept_try_leaves_running_ends_with_it(user: DagUser, tmp_path: Path) -> None:
    home = _secret_home(tmp_path)
    log = home / "logs" / "attempt=1.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            keeper.argv_for(user, [sys.executable, "-c", DAEMON]),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={LOG_PATH_ENV: str(log)},
        )  # fmt: skip
    assert proc.wait(60) == 0, log.read_text(errors="replace")
    daemon = int(_seen(log)["daemon"][0])
    status = Path(f"/proc/{daemon}/status")
    try:
        alive = status.exists() and "zombie" not in status.read_text()
    except OSError:  # gone between the two reads
        alive = False
    if alive:
        seen = status.read_text()
        os.kill(daemon, signal.SIGKILL)
        raise AssertionError(f"the try's daemon outlived it:\n{seen}")
