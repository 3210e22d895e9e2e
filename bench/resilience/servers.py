"""The servers a scenario owns, so it can take them away: a private MariaDB (its own datadir, port and
socket), a private Mosquitto, moto's S3 API and, for the pod backend, the Kubernetes test double. Each
starts and stops on the same port, as a restart of the real thing does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.resilience import processes
from spinner.standalone import free_port

_GIVEN: set[int] = set()


def unique_port() -> int:
    """A free port never handed out before in this process: two free_port() calls in a row can return
    the same port (each closes its probe), and a scenario's S3 once got its Mosquitto's."""
    while True:
        port = free_port()
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until something accepts connections on 127.0.0.1:port; RuntimeError when `proc` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited ({proc.returncode}) before listening on {port}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {port} after {timeout} s")
        time.sleep(0.1)


def wait_port_free(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            return
        time.sleep(0.1)


@dataclass
class MariaDB:
    """`mariadbd` on its own datadir; `kill()` is kill -9 (a crash), `start()` again recovers the same data."""

    folder: Path
    port: int = field(default_factory=unique_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return f"mysql+aiomysql://root@127.0.0.1:{self.port}/spinner?charset=utf8mb4"

    def install(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # --no-defaults: the machine's my.cnf (its log file, its user) is for the shared server, not ours.
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> None:
        if not self.datadir.exists():
            self.install()
        self.proc = processes.start(
            ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.folder / 'sock'}", f"--pid-file={self.folder / 'pid'}",
             "--user=root", "--skip-name-resolve", "--innodb-buffer-pool-size=128M", "--max-connections=500",
             f"--log-error={self.folder / 'error.log'}"],
            env={"PATH": "/usr/sbin:/usr/bin:/bin"}, log=self.folder / "mariadbd.out",
        )  # fmt: skip
        wait_port(self.port, 60, self.proc)

    def create_database(self) -> None:
        subprocess.run(
            ["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", str(self.port), "-u", "root", "-e",
             "CREATE DATABASE spinner CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"],
            check=True,
        )  # fmt: skip

    def kill(self) -> None:
        if self.proc is not None:
            processes.kill(self.proc)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc, 60)
            self.proc = None

    def remove(self) -> None:
        shutil.rmtree(self.datadir, ignore_errors=True)


@dataclass
class Mosquitto:
    folder: Path
    port: int = field(default_factory=unique_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = processes.start(
            ["mosquitto", "-p", str(self.port)], env={"PATH": "/usr/sbin:/usr/bin:/bin"},
            log=self.folder / "mosquitto.log",
        )  # fmt: skip
        wait_port(self.port, 30, self.proc)

    def kill(self) -> None:
        if self.proc is not None:
            processes.kill(self.proc)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None


class S3:
    """moto's S3 server in a thread of this process, as tests/fakes/s3.py runs it: its objects live in
    the process, so `stop()` and `start()` on the same port are an outage that loses nothing, like a
    restart of a real S3 endpoint (a separate moto_server process would come back empty)."""

    ACCESS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def __init__(self, port: int = 0) -> None:
        self.port = port or unique_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Binds in this thread, then serves in another. moto's ThreadedMotoServer binds in its thread and
        waits for it forever when the port is taken (werkzeug exits that thread): a suite hung so."""
        import logging

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
        deadline = time.monotonic() + 15
        while True:
            try:
                app = DomainDispatcherApplication(create_backend_app)  # the objects live in moto's backends
                server = make_server("127.0.0.1", self.port, app, True, request_handler=MotoRequestHandler)
                break
            except (OSError, SystemExit):  # werkzeug exits when the port is in use: the last run's connections
                if time.monotonic() > deadline:
                    raise RuntimeError(f"S3: port {self.port} stayed in use for 15 s") from None
                time.sleep(0.2)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="s3", daemon=True)
        self._thread.start()
        wait_port(self.port, 15)

    def stop(self) -> None:
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(10)

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )  # fmt: skip

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str) -> set[str]:
        client = self.client()
        found: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found.update(item["Key"] for item in page.get("Contents", []))
        return found


class Kubernetes:
    """The Kubernetes test double (tests/fakes/kubernetes.py) in a thread of this process: the pod
    backend's cluster. Its pods are local processes, children of this process (each in a session of
    its own), so they run on whatever happens to standalone and its executor, as pods outlive the
    executor that made them; `stop()` and `start()` take the API server away and bring it back on
    the same port with every pod and its process kept; `close()` kills the pods that are left.

    A pod's "image" is this interpreter's environment: `python -m spinner.runner` in a pod is this
    checkout's runner (k8s_python), with the S3 credentials of moto (the runner archives its log)."""

    def __init__(self, folder: Path) -> None:
        from tests.fakes.kubernetes import FakeKubernetes

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")])
        self.fake = FakeKubernetes(folder / "pods", base_env={"PATH": path, "LANG": "C.UTF-8", **S3.ACCESS})
        self.kubeconfig = folder / "kubeconfig"

    def start(self) -> None:
        self.fake.start()
        self.fake.write_kubeconfig(self.kubeconfig)

    def stop(self) -> None:
        self.fake.stop()

    def close(self) -> None:
        self.fake.close()

    def live_pods(self) -> int:
        """Pods not ended yet (Pending or Running)."""
        return sum(1 for p in self.fake.pods() if (p.get("status") or {}).get("phase") in ("Pending", "Running"))
