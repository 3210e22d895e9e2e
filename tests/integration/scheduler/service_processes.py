"""Spinner services as real processes (`spinner scheduler`, `spinner executor`), so a test can kill -9,
SIGSTOP and restart them. Each writes its output to `<name>.log` in the test's folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def serving(address: str) -> bool:
    """Whether the gRPC server at `address` answers its health check as serving."""
    try:
        async with grpc.aio.insecure_channel(address) as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
    except grpc.aio.AioRpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class ServiceProcesses:
    def __init__(self, home: Path, db_url: str, logs: Path, **env: str) -> None:
        self.home = home
        self.db_url = db_url
        self.logs = logs
        self.env = env  # SPINNER_* settings every process gets
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *argv: str, **env: str) -> subprocess.Popen[bytes]:
        """`spinner <argv...>` as `name` (its log file; a name started again appends to it)."""
        full = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
        full.update({"SPINNER_HOME": str(self.home), "SPINNER_DATABASE_URL": self.db_url})
        full["SPINNER_LOCAL_TRIES_ON_STOP"] = "stop"  # a test's tasks end with it (Spinner's default keeps them)
        full.update({**self.env, **env})
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "spinner.cli.main", *argv], env=full, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """kill -9, and reaps it."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
