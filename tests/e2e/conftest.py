"""One `spinner standalone` per database for every end-to-end module that uses the `spinner` fixture.

Starting a stack costs seconds; one per module and database was a tenth of the suite. A module
adds its own DAG files with `E2E_FILES` (path under the DAGs folder -> text) and settings with
`E2E_ENV`; the shared stack gets those of every collected module, and the SMTP sink the callbacks
tests read. Pytest groups the tests by database, so each stack starts once. A module that needs
a stack of its own (restarts, other settings) defines its own `spinner` fixture, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from tests.e2e.harness import Spinner, standalone_on
from tests.notify_servers import SmtpSink, smtp_server


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


def _collected(session: pytest.Session, name: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for module in {item.module for item in session.items if isinstance(item, pytest.Function)}:
        value: Any = getattr(module, name, None)
        for key, text in (value or {}).items():
            if key in merged and merged[key] != text:
                raise AssertionError(f"two e2e modules set {name}[{key!r}] differently")
            merged[key] = text
    return merged


@pytest.fixture(scope="session")
def _stacks() -> Iterator[tuple[ExitStack, dict[str, Spinner]]]:
    """The shared stacks, stopped at the end of the session only. Pytest tears a parametrized session
    fixture down whenever the next test wants the other value, and on one worker the two databases'
    tests can interleave: each switch cost a new standalone (20-30 s) before this cache."""
    with ExitStack() as stops:
        yield stops, {}


@pytest.fixture(scope="session", params=["sqlite", "mariadb"])
def spinner(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: SmtpSink,
    _stacks: tuple[ExitStack, dict[str, Spinner]],
) -> Spinner:
    stops, started = _stacks
    db: str = request.param
    if db not in started:
        files = _collected(request.session, "E2E_FILES")
        env = _collected(request.session, "E2E_ENV")
        env |= {
            "SPINNER_SMTP_HOST": "127.0.0.1",
            "SPINNER_SMTP_PORT": str(smtp.port),
            "SPINNER_SMTP_FROM": "spinner@test",
        }
        stack = contextmanager(standalone_on)(db, tmp_path_factory.mktemp(f"e2e-{db}"), extra_files=files, env=env)
        started[db] = stops.enter_context(stack)
    return started[db]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist turns the groups into node ids, however the conftests load
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Real processes on a busy machine: 600 s per test, not the suite's 120 s, before one is called hung.
    The shared stack's start counts in the first test that uses it.

    With the suite's workers (pytest-xdist, `--dist loadgroup`), every test of one shared stack runs
    on the same worker, so each stack starts once in the whole suite, not once per worker."""
    for item in items:
        if "tests/e2e/" not in str(item.path).replace("\\", "/"):
            continue
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(600))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("spinner") in ("sqlite", "mariadb") and _shared(item):
            item.add_marker(pytest.mark.xdist_group(f"e2e-{callspec.params['spinner']}"))
        else:  # a module with stacks or a browser of its own keeps them on one worker
            item.add_marker(pytest.mark.xdist_group(f"e2e-{item.path.stem}"))


def _shared(item: pytest.Item) -> bool:
    """Does the test use this conftest's shared `spinner`, not one its module defines?"""
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}).get("spinner", ())
    return bool(defs) and not defs[-1].baseid.endswith(".py")  # defined in a conftest, not a test module
