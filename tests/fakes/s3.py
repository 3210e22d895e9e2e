"""A real S3 API for tests: moto's server mode over HTTP on a free port (not a test double of ours).

`Moto.stop()` and `start()` simulate an outage on the same address; the `moto` fixture (in
tests/fakes/fixtures.py) sets test credentials for the AWS clients.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Moto:
    """moto's S3 server in a thread; `stop()` and `start()` simulate an outage on the same address."""

    port: int
    server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
                self.server.start()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
