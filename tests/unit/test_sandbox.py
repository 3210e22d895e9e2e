"""Who DAG code runs as, and what a service hides from code of its own user (spinner/sandbox.py)."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from spinner.sandbox import (
    PR_SET_DUMPABLE,
    DagUser,
    PathViews,
    SandboxError,
    drop_privileges,
    hide_process,
    private_home,
    resolve_dag_user,
    resolve_task_user,
)

NOBODY = 65534


def test_a_root_platform_runs_dag_code_as_nobody_by_default() -> None:
    user = resolve_dag_user("auto", euid=0)
    assert user is not None and (user.name, user.uid) == ("nobody", NOBODY)
    assert resolve_dag_user("same", euid=0) is None
    assert resolve_dag_user("4321", euid=0) is not None  # a bare uid needs no passwd entry


def test_a_user_platform_keeps_its_user_and_refuses_a_named_one() -> None:
    assert resolve_dag_user("auto", euid=1000) is None
    with pytest.raises(SandboxError, match="needs the platform to run as root"):
        resolve_dag_user("nobody", euid=1000)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's tmp_path is under a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="spinner-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_local_tries_keep_the_platforms_user_only_where_the_dag_user_could_not_run_python(
    open_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp_path = open_dir
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)  # as /root/.pyenv under /root
    (hidden / "python3").write_text("")
    (hidden / "python3").chmod(0o755)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    (shared / "python3").write_text("")
    (shared / "python3").chmod(0o755)
    assert resolve_task_user("auto", euid=0, python=str(hidden / "python3")) is None
    assert "local tries run as this executor's user" in caplog.text  # said, not silent
    user = resolve_task_user("auto", euid=0, python=str(shared / "python3"))
    assert user is not None and user.uid == NOBODY
    named = resolve_task_user("nobody", euid=0, python=str(hidden / "python3"))  # named: taken as it is
    assert named is not None and named.uid == NOBODY
    assert resolve_task_user("auto", euid=1000, python=str(shared / "python3")) is None


def test_dag_user_root_or_unknown_is_refused() -> None:
    with pytest.raises(SandboxError, match="is root"):
        resolve_dag_user("root", euid=0)
    with pytest.raises(SandboxError, match="no such user"):
        resolve_dag_user("no-such-user-here", euid=0)


def test_views_map_back_to_the_real_folders(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    views = PathViews([tmp_path / "dags"])
    view = views.view(tmp_path / "dags")
    assert str(view).startswith("/proc/self/fd/")
    assert views.inside(tmp_path / "dags" / "a.py") == view / "a.py"
    assert (views.inside(tmp_path / "dags" / "a.py")).parent.is_dir()
    text = f'{{"fileloc": "{view}/a.py", "root": "{view}"}}'
    assert views.unview(text) == f'{{"fileloc": "{tmp_path}/dags/a.py", "root": "{tmp_path}/dags"}}'


def _as_nobody(work: Callable[[], str]) -> tuple[int, int]:
    """Forks a child that becomes nobody and runs `work`; returns (pid, read end of its answer's pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(r)
            drop_privileges(DagUser("nobody", NOBODY, NOBODY))
            os.write(w, work().encode())
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _answer(pid: int, r: int) -> str:
    with os.fdopen(r) as f:
        return f.readline().strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: both processes become nobody")
@pytest.mark.parametrize("hide", [False, True])
def test_a_hidden_service_keeps_its_environment_from_code_of_its_own_user(hide: bool) -> None:
    """Without a DAG user (a platform not run as root), a task or a parse runs as the service's own user:
    it could read the service's environment and memory through /proc, unless the service hid itself."""

    def hold() -> str:
        os.write(ready_w, b"ready\n")  # tell the test, then wait to be read
        if hide:
            hide_process()
        else:  # as a process started by that user is (a change of user left it non-dumpable)
            ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        os.write(ready_w, b"hidden\n" if hide else b"plain\n")
        time.sleep(60)
        return ""

    ready_r, ready_w = os.pipe()
    holder, _ = _as_nobody(hold)
    try:
        with os.fdopen(ready_r) as ready:
            os.close(ready_w)
            assert ready.readline().strip() == "ready"
            assert ready.readline().strip() in ("hidden", "plain")

            def read() -> str:
                try:
                    with open(f"/proc/{holder}/environ", "rb") as f:
                        f.read()
                    return "read\n"
                except OSError as e:
                    return type(e).__name__ + "\n"

            pid, r = _as_nobody(read)
            seen = _answer(pid, r)
            os.waitpid(pid, 0)
            print("a process of the same user reading the environment:", seen)
            assert seen == ("PermissionError" if hide else "read")
    finally:
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)


def test_the_home_is_made_private(tmp_path: Path) -> None:
    """DAG code of another user reaches its DAG folder inside the home; going up from it must stop there."""
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "spinner.db").write_text("")
    private_home(home)
    assert home.stat().st_mode & 0o777 == 0o700
    private_home(tmp_path / "new" / "home")
    assert (tmp_path / "new" / "home").stat().st_mode & 0o777 == 0o700
