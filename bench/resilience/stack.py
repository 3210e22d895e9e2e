"""`spinner standalone` as an operator runs it, plus the standby scheduler the scheduler faults need.

Standalone starts each service as a child process and restarts one that dies within about 0.5 s;
its children are found by their command lines. The standby is started exactly as standalone starts
its scheduler, with that child's own environment (read from /proc), on a port of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.resilience import processes
from bench.resilience.servers import unique_port

SERVICES = ("dagsync", "executor", "logs", "scheduler", "gateway")
CLI = [sys.executable, "-m", "spinner.cli.main"]


@dataclass
class Standalone:
    dags: Path
    home: Path
    output: Path  # standalone's own output and its children's, appended over restarts
    env: dict[str, str]
    mqtt_url: str
    port: int = field(default_factory=unique_port)
    proc: subprocess.Popen[bytes] | None = None
    standby: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        """Starts it and waits until it says it runs (RuntimeError with its output's end when it does not)."""
        before = self._said("Spinner is running")
        argv = [*CLI, "standalone", "--dags", str(self.dags), "--home", str(self.home), "--port", str(self.port)]
        if self.mqtt_url:
            argv += ["--mqtt-url", self.mqtt_url]
        # Its own session: a stop of the suite's terminal does not reach it; stop() does.
        self.proc = processes.start(argv, env=self.env, log=self.output)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while self._said("Spinner is running") <= before:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.output.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"standalone did not start (exit {self.proc.poll()}); its output ends:\n{tail}")
            time.sleep(0.2)

    def _said(self, text: str) -> int:
        try:
            return self.output.read_text(errors="replace").count(text)
        except OSError:
            return 0

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM, as Ctrl-C does: standalone stops its children and waits for them."""
        self.stop_standby()
        if self.proc is not None:
            processes.stop(self.proc, timeout)
            self.proc = None

    def child(self, service: str) -> int | None:
        """The pid of standalone's child running `service` (dagsync, executor, logs, scheduler, gateway)."""
        if self.proc is None:
            return None
        for pid in processes.children(self.proc.pid):
            argv = processes.cmdline(pid)
            if len(argv) > 3 and argv[1:3] == ["-m", "spinner.cli.main"] and argv[3] == service:
                return pid
        return None

    def wait_child(self, service: str, timeout: float = 30.0, *, other_than: int | None = None) -> int:
        """The child running `service`, waiting until there is one (and it is not `other_than`)."""
        deadline = time.monotonic() + timeout
        while True:
            pid = self.child(service)
            if pid is not None and pid != other_than:
                return pid
            if time.monotonic() > deadline:
                raise RuntimeError(f"standalone has no {service} child after {timeout} s")
            time.sleep(0.1)

    def start_standby(self, partition: str) -> int:
        """A second scheduler of `partition`, with the environment standalone gave its own scheduler."""
        env = processes.environ(self.wait_child("scheduler"))
        if not env.get("SPINNER_DATABASE_URL"):
            raise RuntimeError("cannot read the environment of standalone's scheduler")
        argv = [*CLI, "scheduler", "--partition", partition, "--port", str(unique_port())]
        self.standby = processes.start(argv, env=env, log=self.output.with_name("standby.log"))
        return self.standby.pid

    def stop_standby(self) -> None:
        if self.standby is not None:
            processes.stop(self.standby)
            self.standby = None

    def restart(self, pause: float) -> float:
        """Stops it, waits `pause` seconds and starts it again on the same port; returns when it was back
        (time.time()). A standby is stopped with it (standalone's services keep their ports from one
        start to the next, but the standby is not standalone's to restart)."""
        self.stop()
        time.sleep(pause)
        self.start()
        return time.time()


def base_env(**spinner: str) -> dict[str, str]:
    """This process's environment without any SPINNER_ setting of the caller's shell, plus `spinner`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
    env.update(spinner)
    env["PYTHONUNBUFFERED"] = "1"
    return env
