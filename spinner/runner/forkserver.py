"""A warm parent for task runners: imports the runner once, then forks a child per task try.

A fresh interpreter spends most of a try's start importing (Spinner's SDK, Jinja, gRPC: about
150 ms on an idle core, far more on a busy one). The local backend starts this server once
(`python -m spinner.runner.forkserver`) and asks it for runners over its stdin/stdout, one JSON
object a line:

    -> {"id": 1, "args": [...runner arguments...], "env": {...}, "log": "/path/to/try.log"}
    <- {"id": 1, "pid": 4242}                   the child runs (or {"id": 1, "error": "..."})
    <- {"exit": 4242, "code": 0}                 the child ended with this exit code (-N: signal N)

Each child starts its own session (so a stop reaches the task's own children), writes stdout
and stderr to the try's log, gets its environment, runs `spinner.runner.main.main(args)` and
exits with its code. Nothing of the server's state but the imported modules is shared: the DAG
file is imported by the child alone. The server never opens a gRPC channel (a forked gRPC
channel is unusable); each child makes its own. It exits when its stdin closes (the executor is
gone); children keep running and report to the executor themselves.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
from typing import Any


def _child(args: list[str], env: dict[str, str], log: str) -> None:
    """In the forked child: become the runner process. Never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if log else os.open(os.devnull, os.O_WRONLY)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        os.environ.update(env)
        for stream in (sys.stdout, sys.stderr):  # a task's print() reaches the live log line by line
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(line_buffering=True)
        sys.argv = ["spinner.runner", *args]
        from spinner.runner.main import main

        code = main(args)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> int:
    # Everything a runner imports, imported once here: children start with it in memory.
    import spinner.config
    import spinner.runner.main
    import spinner.sdk.loader
    import spinner.sdk.templating  # noqa: F401

    out = sys.stdout
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the wakeup fd
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    buffer = b""
    children: set[int] = set()

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            children.discard(pid)
            send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "wake":
                os.read(wake_r, 512)
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:  # the executor is gone
                return 0
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as e:
                    send({"id": request["id"], "error": str(e)})
                    continue
                if pid == 0:
                    sel.close()
                    _child(list(request["args"]), dict(request.get("env") or {}), str(request.get("log") or ""))
                children.add(pid)
                send({"id": request["id"], "pid": pid})
        reap()


if __name__ == "__main__":
    raise SystemExit(serve())
