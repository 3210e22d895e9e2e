"""`spinner standalone`: every service as its own process on this machine, supervised.

SQLite in the home folder, the DAG folder mirrored by dagsync, tasks as local
processes, logs as local files, no broker unless --mqtt-url is given. One scheduler
is started for each partition folder. Ctrl-C (or SIGTERM) stops them all.

The services keep their ports from one start to the next on the same home (`service_ports`): a
task's runner (a local process or a pod) that outlives a stop reports to the address of the executor
that launched it, and the executor of the next start adopts it there.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from spinner.channels import CHANNEL_OPTIONS
from spinner.config import default_home
from spinner.sandbox import hide_process, private_home

PARTITION_PATTERN = r"^(spinner|pii|sox|test)_tier_[1-3]_\d+$"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(address: str, timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    """True once the child at `address` answers SERVING. The channel reconnects every 2 s at most
    (spinner/channels.py): with gRPC's default backoff a child that took 11 to 17 s to start (a gateway
    on a loaded machine) was seen 5 to 10 s after it served, and the next child started that much later."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    return False


@dataclass
class Child:
    name: str
    argv: list[str]
    health_address: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(self.argv, env=env, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def bootstrap_admin(engine: Any, url: str, home: Path) -> str | None:
    """The admin user on first start (returns its new password), and a fresh CLI token for it each start.

    The token is stored for this URL in <home>/credentials.json, where the CLI finds it.
    """
    from spinner import credentials
    from spinner.clock import utcnow
    from spinner.db import auth as db_auth
    from spinner.db.engine import session_factory

    password = None
    async with session_factory(engine)() as s, s.begin():
        await db_auth.ensure_defaults(s)
        user = await db_auth.get_user(s, "admin")
        if user is None:
            password = db_auth.new_password()
            user = await db_auth.create_user(s, "admin", password=password, roles=[db_auth.ADMIN_ROLE], now=utcnow())
        await db_auth.revoke_tokens(s, user.id, "standalone-cli")
        token = await db_auth.create_token(s, user.id, "standalone-cli", utcnow())
    credentials.save(url, token, home)
    return password


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def port_is_free(port: int) -> bool:
    """Can the gateway listen on `port`? Connections of a stopped standalone that linger in TIME_WAIT
    do not count: the gateway's server binds with SO_REUSEADDR, so this check does too (without it,
    a restart seconds after a stop was refused with nothing listening)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


PORTS_FILE = "standalone_ports.json"


def service_ports(home: Path, names: Sequence[str]) -> dict[str, int]:
    """The port of each service: the one the last standalone on `home` gave it when that is free
    again, else a new one; written back for the next start. Without this every start picked new ports,
    so the runners a clean stop leaves running (local tries kept, pods) reported to an address nobody
    answered any more, gave up after their retry timeout and the new executor failed their tries."""
    path = home / PORTS_FILE
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    if not isinstance(saved, dict):
        saved = {}
    ports: dict[str, int] = {}
    for name in names:
        old = saved.get(name)
        if isinstance(old, int) and 0 < old < 65536 and old not in ports.values() and port_is_free(old):
            ports[name] = old
            continue
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    try:
        path.write_text(json.dumps(ports))
    except OSError:
        pass  # the next start picks new ports; nothing else depends on the file
    return ports


def run_standalone(*, dags: Path, home: Path | None, port: int, mqtt_url: str = "") -> int:
    import re

    home = (home or default_home()).resolve()
    dags = dags.resolve()
    if not dags.is_dir():
        print(f"error: DAG folder {dags} does not exist", file=sys.stderr)
        return 2
    partitions = sorted(p.name for p in dags.iterdir() if p.is_dir() and re.match(PARTITION_PATTERN, p.name))
    if not partitions:
        print(f"error: no partition folders (like spinner_tier_1_0) in {dags}", file=sys.stderr)
        return 2
    if not port_is_free(port):
        print(f"error: port {port} is in use; pick another with --port", file=sys.stderr)
        return 2
    private_home(home)  # 0700: its database, keys and logs are no one else's (spinner/sandbox.py)
    hide_process()  # its environment (passed on to the services) is not for DAG code of the same user
    from spinner.fernet import ensure_key_file

    ensure_key_file(home)  # variables and connections are encrypted with it (gateway and executor read it)
    from spinner.identity import ensure_identities

    ensure_identities(home / "identity")  # each service's key: internal calls say who makes them
    ports = service_ports(
        home, ["dagsync", "executor", "logs", "gateway_grpc", *(f"scheduler[{p}]" for p in partitions)]
    )
    env = {
        **os.environ,
        "SPINNER_HOME": str(home),
        "SPINNER_DATABASE_URL": os.environ.get("SPINNER_DATABASE_URL", f"sqlite+aiosqlite:///{home / 'spinner.db'}"),
        "SPINNER_MQTT_URL": mqtt_url,
        "SPINNER_EXECUTOR_ADDRESS": f"127.0.0.1:{ports['executor']}",
        "SPINNER_LOGS_ADDRESS": f"127.0.0.1:{ports['logs']}",
        "SPINNER_DAGSYNC_ADDRESS": f"127.0.0.1:{ports['dagsync']}",
        "PYTHONUNBUFFERED": "1",
    }
    from spinner.db.engine import create_engine
    from spinner.db.migrate import upgrade

    url = f"http://127.0.0.1:{port}"

    async def migrate() -> str | None:
        engine = create_engine(env["SPINNER_DATABASE_URL"])
        try:
            await upgrade(engine)
            return await bootstrap_admin(engine, url, home)
        finally:
            await engine.dispose()

    admin_password = asyncio.run(migrate())

    spinner = [sys.executable, "-m", "spinner.cli.main"]
    local = "127.0.0.1"
    children = [
        Child("dagsync", [*spinner, "dagsync", "--port", str(ports["dagsync"]), "--dags", str(dags)],
              f"{local}:{ports['dagsync']}"),
        Child("executor", [*spinner, "executor", "--port", str(ports["executor"])],
              f"{local}:{ports['executor']}"),
        Child("logs", [*spinner, "logs", "--port", str(ports["logs"])], f"{local}:{ports['logs']}"),
    ]  # fmt: skip
    for partition in partitions:
        sched_port = ports[f"scheduler[{partition}]"]
        children.append(
            Child(
                f"scheduler[{partition}]",
                [*spinner, "scheduler", "--partition", partition, "--port", str(sched_port)],
                f"127.0.0.1:{sched_port}",
            )
        )
    children.append(
        Child(
            "gateway",
            [*spinner, "gateway", "--port", str(port), "--grpc-port", str(ports["gateway_grpc"])],
            f"127.0.0.1:{ports['gateway_grpc']}",
        )
    )

    # Explicitly, both: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    exit_code = 0
    try:
        for child in children:
            child.start(env)
            if not wait_healthy(child.health_address, 60, child.proc):  # type: ignore[arg-type]
                print(f"error: {child.name} did not start; see its output above", file=sys.stderr)
                exit_code = 1
                raise _Stop()
        print(f"Spinner is running: {url}  (DAGs from {dags}, state in {home})", flush=True)
        if admin_password:
            print(f"Log in as admin with password {admin_password}  (shown this once)", flush=True)
        else:
            print("Log in as admin (its password was printed when this home was first used)", flush=True)
        print(f"Partitions: {', '.join(partitions)}. Press Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(0.5)
            for child in children:
                if not child.alive():
                    now = time.monotonic()
                    child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                    if len(child.restarts) > 5:
                        print(f"error: {child.name} keeps dying; stopping Spinner", file=sys.stderr)
                        exit_code = 1
                        raise _Stop()
                    code = child.proc.returncode if child.proc else None
                    print(f"{child.name} exited ({code}); restarting it", file=sys.stderr, flush=True)
                    child.start(env)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(children):
            child.stop()
        for child in reversed(children):
            child.wait(15)
        print("Spinner stopped.", flush=True)
    return exit_code
