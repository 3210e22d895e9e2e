"""Shared fixtures: real databases (SQLite and MariaDB), a real MQTT broker.

A server that cannot be reached is a test failure, never a skip: `make test`
(scripts/ensure-test-services.sh) installs and starts them on a fresh machine.
Set SPINNER_TEST_MYSQL_URL / SPINNER_TEST_MQTT_URL to use other servers.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from spinner.db.engine import create_engine, session_factory
from spinner.db.migrate import upgrade

# The Kubernetes and Elasticsearch test doubles' fixtures (fake_kubernetes, kube_api, fake_elasticsearch, es_client).
pytest_plugins = ["tests.fakes.fixtures"]

# Gateways and executors refuse to start without a Fernet key (spinner/fernet.py); the ones tests start
# in this process read this one. Standalone (the e2e tests, whose environment has no SPINNER_*) makes its own.
os.environ.setdefault("SPINNER_FERNET_KEY", "0sWAOJd6b5qgh-B9a6EDW1UD4nplzUXZxgL4Fc3UqLM=")

MYSQL_URL = os.environ.get("SPINNER_TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306")
MQTT_URL = os.environ.get("SPINNER_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def _require_port(url: str, default_port: int, what: str) -> None:
    parsed = urlparse(url.replace("+aiomysql", ""))
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as e:
        pytest.fail(f"{what} at {host}:{port} is not reachable ({e}); `make test` starts it", pytrace=False)


async def _create_mysql_database() -> tuple[str, str]:
    import aiomysql

    _require_port(MYSQL_URL, 3306, "MariaDB/MySQL")
    base = make_url(MYSQL_URL)
    name = f"spinner_test_{uuid.uuid4().hex[:12]}"
    conn = await aiomysql.connect(
        host=base.host or "127.0.0.1",
        port=base.port or 3306,
        user=base.username or "root",
        password=base.password or "",
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    finally:
        conn.close()
    url = base.set(database=name, query={"charset": "utf8mb4"}).render_as_string(hide_password=False)
    return name, url


async def _drop_mysql_database(name: str) -> None:
    import aiomysql

    base = make_url(MYSQL_URL)
    conn = await aiomysql.connect(
        host=base.host or "127.0.0.1",
        port=base.port or 3306,
        user=base.username or "root",
        password=base.password or "",
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "mariadb"])
async def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """An empty database on each backend: a SQLite file, then a fresh MariaDB database."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "spinner.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    name, url = await _create_mysql_database()
    try:
        yield url
    finally:
        await _drop_mysql_database(name)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database on each backend."""
    eng = create_engine(db_url)
    await upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
def mqtt_url() -> str:
    """The real Mosquitto broker."""
    _require_port(MQTT_URL, 1883, "MQTT broker")
    return MQTT_URL


def pytest_collection_finish(session: pytest.Session) -> None:
    """Two tests with one node id are one test to the suite's workers (pytest-xdist sends tests by id):
    the others were dropped without a word. Refuse such a suite instead."""
    twice = sorted(nodeid for nodeid, n in Counter(item.nodeid for item in session.items).items() if n > 1)
    if twice:
        raise pytest.UsageError(f"tests share a node id (give them ids): {', '.join(twice[:5])}")
    # `--dist loadgroup` sends a group's tests to one worker by the "@group" suffix pytest-xdist adds to
    # their node ids. Where it cannot (pytest 9.2 with xdist 3.8), the groups were ignored without a word:
    # every worker started the shared stacks of its own. Refuse such a run instead.
    if os.environ.get("PYTEST_XDIST_WORKER") and session.config.getvalue("loadgroup"):
        lost = [
            item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid
        ]
        if lost:
            raise pytest.UsageError(f"pytest-xdist did not group these tests (pytest/xdist versions?): {lost[:3]}")
