"""A DAG file parsed by a scheduler running as root runs as another user (issue 14, item 2).

The finding: a DAG file read the database URL, the CLI's admin token in the home folder and the
gateway's cookie secret, and wrote outside its folder. The environment is scrubbed elsewhere
(test_parsing); here the file runs as `nobody`, in a working directory of its own, and reaches
its DAG folder although that folder is inside a home only root may enter.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.scheduler.engine.parsing import Parser
from spinner.processes import is_alive
from spinner.sandbox import resolve_dag_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a separate DAG user exists only then")

PARTITION = "spinner_tier_1_0"

# Records what it could do in its DAG's description: it can write nowhere the test could read.
PROBE = """
import json, os
from spinner import DAG, BashOperator, Tier

def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as e:
        return type(e).__name__

seen = {{
    "uid": os.getuid(),
    "cwd": os.getcwd(),
    "cwd_writable": attempt(lambda: open("scratch.txt", "w").write("x")),
    "read_token": attempt(lambda: open({token!r}).read()),
    "read_database": attempt(lambda: open({database!r}, "rb").read()),
    "read_database_from_above": attempt(lambda: open(os.path.join(os.path.dirname(__file__), {up!r}), "rb").read()),
    "read_environ": attempt(lambda: open("/proc/{pid}/environ", "rb").read()),
    "write_dag_folder": attempt(lambda: open(os.path.join(os.path.dirname(__file__), "dropped.py"), "w").write("x")),
    "import_stdlib": attempt(lambda: __import__("wave")),
}}
with DAG(dag_id="probe", tier=Tier.TIER1, description=json.dumps(seen)) as dag:
    BashOperator(task_id="t", bash_command="echo hi")
"""


@pytest.fixture(params=["forked", "fresh"])
async def parser(request: pytest.FixtureRequest) -> AsyncIterator[Parser]:
    user = resolve_dag_user("auto")
    assert user is not None and user.name == "nobody", "a root scheduler parses as nobody by default"
    p = Parser(fork_server=request.param == "forked", user=user)
    yield p
    await p.aclose()


def _home(tmp_path: Path) -> tuple[Path, Path]:
    """A standalone-like home (0700, with a token and a database) and a snapshot in it, as dagsync makes."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "cli_token").write_text("spn_secret")
    (home / "cli_token").chmod(0o600)
    (home / "spinner.db").write_bytes(b"SQLite format 3\0")
    (home / "spinner.db").chmod(0o644)  # even a file others could read: the home keeps them out
    root = home / "snapshots" / "versions" / "v1"
    (root / PARTITION / "team").mkdir(parents=True)
    for folder in (
        home / "snapshots",
        home / "snapshots" / "versions",
        root,
        root / PARTITION,
        root / PARTITION / "team",
    ):
        folder.chmod(0o755)
    return home, root


async def test_a_dag_file_runs_as_nobody_and_reaches_only_its_folder(parser: Parser, tmp_path: Path) -> None:
    home, root = _home(tmp_path)
    file = root / PARTITION / "team" / "probe.py"
    file.write_text(
        PROBE.format(
            token=str(home / "cli_token"),
            database=str(home / "spinner.db"),
            up="../../../../../spinner.db",
            pid=os.getpid(),
        )
    )
    file.chmod(0o644)

    result = await parser.parse(root, file, 30)

    assert result.error is None, result.error
    [dag] = result.dags
    seen = json.loads(dag["description"])
    print("the DAG file saw:", seen)
    assert seen["uid"] == 65534
    assert seen["cwd_writable"] == "allowed"  # a working directory of its own...
    assert not Path(seen["cwd"]).is_relative_to(root)
    assert not await asyncio.to_thread(os.path.exists, seen["cwd"])  # ...gone after the parse
    assert seen["read_token"] == "PermissionError"
    assert seen["read_database"] == "PermissionError"
    assert seen["read_database_from_above"] == "PermissionError"  # `..` from its folder stops at the home
    assert seen["read_environ"] == "PermissionError"  # the scheduler's environment
    assert seen["write_dag_folder"] == "PermissionError"
    assert seen["import_stdlib"] == "allowed"  # the interpreter's own folders still import
    assert not (root / PARTITION / "team" / "dropped.py").exists()
    assert dag["fileloc"] == str(file), "file names are the real ones, not the /proc view"


async def test_an_error_names_the_real_file(parser: Parser, tmp_path: Path) -> None:
    _, root = _home(tmp_path)
    file = root / PARTITION / "team" / "broken.py"
    file.write_text("import os\nraise RuntimeError(f'uid {os.getuid()}')\n")
    file.chmod(0o644)

    result = await parser.parse(root, file, 30)

    assert result.error is not None
    assert "RuntimeError: uid 65534" in result.error
    assert "/proc/self/fd" not in result.error, result.error
    assert f"{PARTITION}/team/broken.py" in result.error


# Daemonizes as a daemon does: a double fork, a session of its own in the grandchild, stdio on /dev/null;
# the grandchild, now init's (or a subreaper's), says who it is and sleeps. The file waits for that word.
DAEMON = """
import json, os, sys, time
from spinner import DAG, BashOperator, Tier

report = {report!r}
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        with open(report + ".tmp", "w") as f:
            json.dump({{"pid": os.getpid(), "sid": os.getsid(0), "uid": os.getuid()}}, f)
        os.rename(report + ".tmp", report)
        time.sleep(300)
    os._exit(0)
os.wait()
deadline = time.monotonic() + 20
while not os.path.exists(report) and time.monotonic() < deadline:
    time.sleep(0.05)
with DAG(dag_id="daemonizes", tier=Tier.TIER1, description=json.dumps({{"sid": os.getsid(0)}})) as dag:
    BashOperator(task_id="t", bash_command="echo hi")
{then}
"""


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder the DAG user may write: world-writable, in /tmp (pytest's tmp_path is in a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="spinner-daemon-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def _gone_within(pid: int, seconds: float) -> str:
    """'' once `pid` has exited; else what /proc says of it after `seconds` (and it is killed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return ""
        await asyncio.sleep(0.1)
    try:
        status = await asyncio.to_thread(Path(f"/proc/{pid}/status").read_text)
    except OSError as e:
        status = f"(no /proc/{pid}/status: {e})"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return status


@pytest.mark.parametrize("ends", ["returns", "hangs"])
async def test_a_daemon_the_dag_file_starts_is_killed_when_its_parse_ends(
    parser: Parser, tmp_path: Path, scratch: Path, ends: str
) -> None:
    """A double fork and a session of its own take a process out of the parse's process group and away
    from its parent: the parse's subreaper (the fork server's, or the fresh worker's own) still kills it."""
    _, root = _home(tmp_path)
    file = root / PARTITION / "team" / "daemonizes.py"
    report = scratch / "daemon.json"
    hang = "while True:\n    time.sleep(0.1)" if ends == "hangs" else ""
    file.write_text(DAEMON.format(report=str(report), then=hang))
    file.chmod(0o644)

    result = await parser.parse(root, file, 6 if ends == "hangs" else 30)

    daemon = json.loads(await asyncio.to_thread(report.read_text))
    print("the daemon:", daemon, "the parse:", result)
    assert daemon["uid"] == 65534
    if ends == "hangs":
        assert result.error is not None and "longer than 6 s" in result.error, result.error
    else:
        assert result.error is None, result.error
        [dag] = result.dags
        assert json.loads(dag["description"])["sid"] != daemon["sid"], "the daemon left the parse's session"
    seen = await _gone_within(daemon["pid"], 10)
    assert not seen, f"the daemon (pid {daemon['pid']}) outlived its parse by 10 s:\n{seen}"
