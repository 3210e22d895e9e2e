"""The runner's log pump masks secrets in everything the task writes: prints, logging, subprocesses, tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, traceback
    from spinner.config import LogStoreSettings
    from spinner.runner.logstream import LogStream
    from spinner.runner.masking import mask_secret
    from spinner.tasklog import LogId

    stream = LogStream(LogId("d", "t", "r", 1), LogStoreSettings(), print)
    stream.start()
    mask_secret("hunter2-secret")
    print("print: hunter2-secret", flush=True)
    print("stderr: hunter2-secret", file=sys.stderr, flush=True)
    logging.basicConfig(stream=sys.stderr)
    logging.getLogger("task").warning("logging: hunter2-secret")
    os.system("echo subprocess: hunter2-secret")
    try:
        raise RuntimeError("could not log in with hunter2-secret")
    except RuntimeError:
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
    stream.close()
    print("after close: done")
    """
)


def test_every_line_the_task_writes_is_masked_before_it_leaves(tmp_path: Path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
    env["PYTHONPATH"] = str(Path(__file__).parents[3])
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    for line in (
        "print: ***",
        "stderr: ***",
        "logging: ***",
        "subprocess: ***",
        "RuntimeError: could not log in with ***",
    ):
        assert line in out, out
    assert "hunter2-secret" not in out, out
    assert "after close: done" in out
