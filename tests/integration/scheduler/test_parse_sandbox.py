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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.scheduler.engine.parsing import Parser
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
