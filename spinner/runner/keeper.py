"""A local try as the DAG user: its keeper stays root, its runner does not (docs/adr/0011-trust-model.md).

Where the executor runs as root, a local try's runner must not: the DAG code it imports could read the
platform's home (its database, keys and tokens), other tries' logs and every process's environment.
So the local backend runs `python -m spinner.runner.keeper <uid:gid:name> <command>` (in a fork server's
child: `main`) instead of the command. That process is the try's *keeper*:

- it opens the DAG snapshot and the import folders the DAG user cannot reach before it forks, and the
  runner reaches them through `/proc/self/fd/N` (`spinner.sandbox.PathViews`): the snapshot's view
  stands in for `--snapshot`;
- it makes the try a working directory of its own, owned by the DAG user and its HOME, removed when
  the try ends;
- its child drops to the DAG user for good and runs the command: `python -m <module>` (or `-c`) in the child itself
  (the interpreter may sit where the DAG user cannot execute it, /root/.pyenv; its libraries are
  reached through views), anything else with exec; the keeper waits for it and exits with its code
  (killed by a signal: 128 + the signal);
- the runner marks its log complete as its last act (spinner/runner/completion.py), but a DAG user may
  not create files in the log folder: it writes a byte to a pipe the keeper holds (`LOG_END_FD_ENV`),
  and the keeper touches the marker once the runner is gone;
- it is the subreaper of what the try starts (spinner/reaper.py): once the runner is gone, what the task
  left running, a daemon in a session of its own included, is killed;
- the runner names the keeper as its process (`RUNNER_PID_ENV`): the keeper is what the executor
  watches, adopts after a restart and signals; its process group holds the runner and what the task
  started. The keeper itself ignores SIGTERM and SIGINT, which the runner handles (it reports the kill).

Without a DAG user (`dag_user=same`, or the platform does not run as root) there is no keeper: the
runner runs as before, its environment scrubbed all the same (spinner.fernet.task_environ).
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from spinner.logpaths import LOG_PATH_ENV, complete_marker
from spinner.reaper import become_subreaper, kill_adopted
from spinner.sandbox import DagUser, become

LOG_END_FD_ENV = "SPINNER_LOG_END_FD"  # the runner writes one byte here where it would touch the marker
RUNNER_PID_ENV = "SPINNER_RUNNER_PID"  # the process the executor knows the try by: the keeper
MODULE = "spinner.runner.keeper"
MARK = b"1"


def runner_pid() -> int:
    """The pid a runner reports at Start and Finish: its keeper's where it has one."""
    value = os.environ.get(RUNNER_PID_ENV, "")
    return int(value) if value.isdigit() else os.getpid()


def argv_for(user: DagUser, argv: Sequence[str]) -> list[str]:
    """The same command under a keeper for `user`."""
    return [sys.executable, "-m", MODULE, user.spec(), *argv]


def _snapshot_arg(args: list[str]) -> int | None:
    """The index of the `--snapshot` value in a runner's arguments."""
    for i, arg in enumerate(args[:-1]):
        if arg == "--snapshot":
            return i + 1
    return None


def _workdir(user: DagUser) -> Path:
    path = Path(tempfile.mkdtemp(prefix="spinner-try-"))
    os.chown(path, user.uid, user.gid)
    return path


def _code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _run(argv: list[str]) -> int:
    """`python -m module args` and `python -c code args` in this process; any other command replaces it."""
    if len(argv) < 3 or argv[0] != sys.executable or argv[1] not in ("-m", "-c"):
        os.execvp(argv[0], argv)
    try:
        if argv[1] == "-m":
            sys.argv = [argv[2], *argv[3:]]
            runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        else:
            sys.argv = ["-c", *argv[3:]]
            exec(compile(argv[2], "<string>", "exec"), {"__name__": "__main__"})  # as python -c does
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def keep(user: DagUser, argv: Sequence[str]) -> int:
    """Runs `argv` as `user` in a child, and waits for it (see the module's docstring)."""
    args = list(argv)
    index = _snapshot_arg(args)
    snapshot = Path(args[index]) if index is not None else None
    if snapshot is not None and not snapshot.is_dir():  # not on this host: the runner says so
        snapshot = None
    workdir = _workdir(user)
    end_r, end_w = os.pipe()
    os.environ[RUNNER_PID_ENV] = str(os.getpid())
    os.environ[LOG_END_FD_ENV] = str(end_w)
    log_path = os.environ.get(LOG_PATH_ENV, "")
    with contextlib.suppress(OSError):  # not Linux: what leaves the try's group outlives it, as before
        become_subreaper()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the runner: the DAG user from here on
        code = 1
        try:
            os.close(end_r)
            os.chdir(workdir)
            os.environ["HOME"] = str(workdir)
            _, root = become(user, snapshot or workdir)
            if index is not None and snapshot is not None:
                args[index] = str(root)
            code = _run(args)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    os.close(end_w)
    for sig in (signal.SIGTERM, signal.SIGINT):  # the runner's to handle (it reports the kill); the group gets it
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    os.set_blocking(end_r, False)
    try:
        marked = os.read(end_r, 1) == MARK
    except BlockingIOError:  # a process the task forked still holds the pipe and wrote nothing
        marked = False
    os.close(end_r)
    kill_adopted()  # what the task left running: its processes are the try's, and the try has ended
    if marked and log_path:
        with contextlib.suppress(OSError):  # the folder is gone: the executor, if it sees the end, says so
            complete_marker(Path(log_path)).touch()
    shutil.rmtree(workdir, ignore_errors=True)
    return _code(status)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) < 2:
        print("usage: python -m spinner.runner.keeper <uid:gid:name> <command> [args...]", file=sys.stderr)
        return 2
    user = DagUser.from_spec(args[0])
    return _run(args[1:]) if user is None else keep(user, args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
