"""Commands that run Spinner's services: dagsync, scheduler, executor, logs, gateway, standalone, db.

Imports of the services happen inside the handlers, so `spinner dags list` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from spinner.runtime import configure_logging, run_until_signalled
from spinner.sandbox import hide_process, private_home


def _settings(cls: Any, args: argparse.Namespace, **fields: Any) -> Any:
    given = {k: v for k, v in fields.items() if v is not None}
    try:
        return cls(**given)
    except ValidationError as e:
        raise SystemExit(f"error: invalid settings: {e}") from None


def _run(service: str, settings: Any, serve: Any, identity: str = "") -> int:
    from spinner.fernet import FernetKeyError, load_box

    if hasattr(settings, "fernet_key"):  # gateway and executor: refuse to start without the key
        try:
            load_box(settings.fernet_key, settings.home, service)
        except FernetKeyError as e:
            raise SystemExit(f"error: {e}") from None
    if hasattr(settings, "token_secret"):  # the executor: its runner-token key, made once in its home
        from services.executor.tokens import token_secret

        try:
            token_secret(settings.token_secret, settings.home)
        except (OSError, ValueError) as e:
            raise SystemExit(
                f"error: the executor has no runner-token key: {e} (or set SPINNER_TOKEN_SECRET)"
            ) from None
    from spinner.identity import IdentityError, load_identity

    try:  # its own key, which signs its calls (spinner/identity.py): made in a writable home when missing
        load_identity(settings.identities, identity or service)
    except IdentityError as e:
        raise SystemExit(f"error: {e} (see `spinner identities` and deploy/README.md)") from None
    if hasattr(settings, "dag_user"):  # scheduler, executor: a DAG user that cannot work is said before they start
        from spinner.sandbox import SandboxError, resolve_dag_user

        try:
            resolve_dag_user(settings.dag_user)
        except SandboxError as e:
            raise SystemExit(f"error: {e}") from None
    if settings.home.exists():
        private_home(settings.home)
    hide_process()  # same-user DAG and task code cannot read this process's environment or memory
    configure_logging(settings.log_level, service)
    run_until_signalled(lambda stop: serve(settings, stop))
    return 0


def _dagsync(args: argparse.Namespace) -> int:
    from services.dagsync.__main__ import serve
    from spinner.config import DagSyncSettings

    s = _settings(DagSyncSettings, args, port=args.port, source_dir=args.dags, home=args.home)
    return _run("dagsync", s, serve)


def _scheduler(args: argparse.Namespace) -> int:
    from services.scheduler.__main__ import serve
    from spinner.config import SchedulerSettings

    s = _settings(
        SchedulerSettings, args, partition=args.partition, port=args.port, home=args.home,
        executor_address=args.executor,
    )  # fmt: skip
    if not s.partition:
        raise SystemExit("error: --partition is required (e.g. spinner_tier_1_0)")
    return _run(f"scheduler[{s.partition}]", s, serve, identity="scheduler")


def _executor(args: argparse.Namespace) -> int:
    from services.executor.__main__ import serve
    from spinner.config import ExecutorSettings

    s = _settings(ExecutorSettings, args, port=args.port, home=args.home)
    return _run("executor", s, serve)


def _logs(args: argparse.Namespace) -> int:
    from services.logs.__main__ import serve
    from spinner.config import LogsSettings

    s = _settings(LogsSettings, args, port=args.port, home=args.home)
    return _run("logs", s, serve)


def _gateway(args: argparse.Namespace) -> int:
    from gateway.__main__ import serve
    from spinner.config import GatewaySettings

    s = _settings(GatewaySettings, args, http_port=args.port, grpc_port=args.grpc_port, home=args.home)
    return _run("gateway", s, serve)


def _db_upgrade(args: argparse.Namespace) -> int:
    from spinner.config import CommonSettings
    from spinner.db.engine import create_engine
    from spinner.db.migrate import upgrade

    s = _settings(CommonSettings, args, home=args.home, database_url=args.database_url)

    async def go() -> None:
        engine = create_engine(s.database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    if s.database_url.startswith("sqlite"):
        s.home.mkdir(parents=True, exist_ok=True)
    asyncio.run(go())
    print(f"database at {s.database_url.split('@')[-1]} is up to date")
    return 0


def _db_create_admin(args: argparse.Namespace) -> int:
    """The first Admin of a new installation, written to the database directly (no gateway needed)."""
    from spinner.clock import utcnow
    from spinner.config import CommonSettings
    from spinner.db import auth as db_auth
    from spinner.db.engine import create_engine, session_factory

    s = _settings(CommonSettings, args, home=args.home, database_url=args.database_url)
    password = db_auth.new_password()

    async def go() -> bool:
        engine = create_engine(s.database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                await db_auth.ensure_defaults(session)
                if await db_auth.get_user(session, args.username) is not None:
                    return False
                await db_auth.create_user(
                    session, args.username, password=password, roles=[db_auth.ADMIN_ROLE], now=utcnow()
                )
                return True
        finally:
            await engine.dispose()

    if not asyncio.run(go()):
        print(f"error: user {args.username} exists already", file=sys.stderr)
        return 1
    print(f"created Admin {args.username} with password {password}  (shown this once)")
    return 0


def _standalone(args: argparse.Namespace) -> int:
    from spinner.standalone import run_standalone

    return run_standalone(dags=args.dags, home=args.home, port=args.port, mqtt_url=args.mqtt_url)


def _identities(args: argparse.Namespace) -> int:
    """Makes every service's key pair in a folder, for a deployment's Secrets and ConfigMap."""
    from spinner.identity import SERVICES, ensure_identities

    folder: Path = args.folder
    existing = [n for n in SERVICES if (folder / f"{n}.key").exists()]
    ensure_identities(folder)
    for name in SERVICES:
        print(f"{folder / (name + '.key')}  {'kept' if name in existing else 'made'}  (private: only the {name})")
    print(f"{folder}/*.pub: every service's public key, trusted by all (one ConfigMap)")
    print("In Kubernetes (deploy/README.md):")
    for name in SERVICES:
        print(f"  kubectl create secret generic spinner-identity-{name} --from-file={folder / (name + '.key')}")
    pubs = " ".join(f"--from-file={folder / (n + '.pub')}" for n in SERVICES)
    print(f"  kubectl create configmap spinner-identity-public {pubs}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("identities", help="make the services' keys (internal calls say who makes them)")
    p.add_argument("folder", type=Path, help="folder for <service>.key and <service>.pub (existing keys are kept)")
    p.set_defaults(handler=_identities)

    p = sub.add_parser("dagsync", help="run the DAG sync service")
    p.add_argument("--port", type=int)
    p.add_argument("--dags", type=Path, help="DAG repository folder to mirror")
    p.add_argument("--home", type=Path)
    p.set_defaults(handler=_dagsync)

    p = sub.add_parser("scheduler", help="run the scheduler of one partition")
    p.add_argument("--partition", help="e.g. spinner_tier_1_0")
    p.add_argument("--port", type=int)
    p.add_argument("--executor", help="executor address host:port")
    p.add_argument("--home", type=Path)
    p.set_defaults(handler=_scheduler)

    p = sub.add_parser("executor", help="run the executor")
    p.add_argument("--port", type=int)
    p.add_argument("--home", type=Path)
    p.set_defaults(handler=_executor)

    p = sub.add_parser("logs", help="run the logs service")
    p.add_argument("--port", type=int)
    p.add_argument("--home", type=Path)
    p.set_defaults(handler=_logs)

    p = sub.add_parser("gateway", help="run the gateway (web UI, REST and gRPC API)")
    p.add_argument("--port", type=int, help="HTTP port of the UI and REST API")
    p.add_argument("--grpc-port", type=int, help="port of the public gRPC API")
    p.add_argument("--home", type=Path)
    p.set_defaults(handler=_gateway)

    p = sub.add_parser("db", help="database administration")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations")
    up.add_argument("--home", type=Path)
    up.add_argument("--database-url")
    up.set_defaults(handler=_db_upgrade)
    admin = dbsub.add_parser("create-admin", help="create the first Admin user and print its password")
    admin.add_argument("username", nargs="?", default="admin")
    admin.add_argument("--home", type=Path)
    admin.add_argument("--database-url")
    admin.set_defaults(handler=_db_create_admin)

    p = sub.add_parser("standalone", help="run all of Spinner on this machine (SQLite, local tasks)")
    p.add_argument("--port", type=int, default=8080, help="web UI and REST API port (default 8080)")
    p.add_argument("--dags", type=Path, default=Path("examples/dags"), help="DAG repository folder")
    p.add_argument("--home", type=Path, default=None, help="state folder (default ~/.spinner)")
    p.add_argument("--mqtt-url", default="", help="use this MQTT broker for events (default: none, poll)")
    p.set_defaults(handler=_standalone)
