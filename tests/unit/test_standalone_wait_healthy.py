"""Standalone starts its services one after the other, each once the one before answers its health
check: a child that is slow to start (a gateway on a loaded machine) must be seen soon after it serves."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from spinner.standalone import free_port, wait_healthy

STARTS_AFTER = 11.0  # gRPC's default backoff (1 s, x1.6) would try next at about 16 s


def test_a_child_that_starts_slowly_is_seen_soon_after_it_serves() -> None:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    seen: list[float] = []

    def wait() -> None:
        if wait_healthy(f"127.0.0.1:{port}", 40, child):
            seen.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    try:
        waiter.start()
        time.sleep(STARTS_AFTER)  # the child is still starting: nothing listens yet

        async def serve() -> float:
            server = grpc.aio.server()
            servicer = health.aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
            server.add_insecure_port(f"127.0.0.1:{port}")
            await server.start()
            await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
            up = time.monotonic()
            deadline = up + 20
            while not seen and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await server.stop(0)
            return up

        up = asyncio.run(serve())
        waiter.join(5)
    finally:
        child.kill()
        child.wait()
    assert seen, "wait_healthy never saw the child serving"
    assert seen[0] - up < 3.0, f"seen {seen[0] - up:.1f} s after it served"
