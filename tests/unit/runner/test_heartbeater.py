"""The heartbeat thread stops the task when the executor says so, and only while the task runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60)


def test_a_beat_answered_after_the_task_ended_does_not_kill_the_runner() -> None:
    # A beat in flight while the task ends comes back "no longer running" once Finish is recorded;
    # the runner must carry on to its callbacks, its log's end and its archive (found by make resilience).
    done = _run(
        """
        import threading, time
        from spinner.runner.main import Heartbeater
        in_flight = threading.Event()
        def beat():
            in_flight.set()
            time.sleep(1.0)
            return False
        hb = Heartbeater(beat, 0.05)
        hb.start()
        in_flight.wait(10)
        hb.stop()  # what run() does before its Finish
        hb.join(10)
        print("carried on")
        """
    )
    assert done.returncode == 0 and "carried on" in done.stdout, (done.returncode, done.stdout, done.stderr)


def test_the_executor_saying_stop_while_the_task_runs_stops_it() -> None:
    done = _run(
        """
        import time
        from spinner.runner.main import Heartbeater
        hb = Heartbeater(lambda: False, 0.05)
        hb.start()
        time.sleep(30)
        print("not stopped")
        """
    )
    assert done.returncode == -15, (done.returncode, done.stdout, done.stderr)  # SIGTERM
    assert "should no longer run" in done.stdout
