"""Which database errors go away by themselves, decided in one place, and waiting them out.

A database that restarts, fails over or drops a connection makes every service's next statement
fail. Those failures are transient: the same work succeeds once the server is back. Everything
that reports a try's progress (the runner through the executor, the executor's own record of a
process's end) retries them with backoff for `database_retry_timeout` seconds, longer than a
typical restart, instead of recording a succeeded task as failed. Over gRPC a transient error is
UNAVAILABLE (spinner/grpcserver.py), which runners and schedulers retry; any other error is a bug
or a refusal, and is not retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import exc

T = TypeVar("T")

# MySQL/MariaDB client and server codes that mean "not now": the server is away, restarting or
# dropped the connection; a lock wait timed out; a deadlock chose this transaction.
TRANSIENT_MYSQL_CODES = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1205,  # lock wait timeout
        1213,  # deadlock
        1927,  # connection was killed
        2002,  # can't connect through the socket
        2003,  # can't connect to the server
        2006,  # server has gone away
        2013,  # lost connection during query
        2014,  # commands out of sync (a connection broken mid-statement)
        2055,  # lost connection at the system level
        4031,  # disconnected by the server (idle transaction timeout)
    }
)


def _mysql_code(error: BaseException | None) -> int | None:
    args = getattr(error, "args", None)
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_transient(error: BaseException) -> bool:
    """True for an error the same statement would not hit once the database is back."""
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        orig = error.orig
        code = _mysql_code(orig)
        if code is not None:
            return code in TRANSIENT_MYSQL_CODES
        text = str(orig).lower()
        if "database is locked" in text or "disk i/o error" in text:  # SQLite: another writer, a busy disk
            return True
        # psycopg/asyncpg: connection failures are OperationalError/InterfaceError without a code.
        return isinstance(error, exc.OperationalError | exc.InterfaceError) and _connection_words(text)
    if isinstance(error, exc.DisconnectionError | exc.TimeoutError):  # pool: no connection in time
        return True
    if isinstance(error, ConnectionError | TimeoutError):  # a driver's socket, before SQLAlchemy wraps it
        return True
    cause = error.__cause__ or error.__context__
    return cause is not None and cause is not error and isinstance(cause, ConnectionError)


def is_lock_busy(error: BaseException) -> bool:
    """True for a NOWAIT lock refused because another transaction holds the row (MariaDB answers
    NOWAIT with its lock-wait error, MySQL 8 with its own; PostgreSQL: lock_not_available)."""
    if not isinstance(error, exc.DBAPIError):
        return False
    code = _mysql_code(error.orig)
    return (
        code in (1205, 3572)
        or getattr(error.orig, "pgcode", None) == "55P03"
        or getattr(error.orig, "sqlstate", None) == "55P03"
    )


def _connection_words(text: str) -> bool:
    return any(
        w in text
        for w in ("connection", "connect", "server closed", "terminating", "shutting down", "gone away", "timeout")
    )


def brief(error: BaseException) -> str:
    """One line for a log or a status message: the driver's message, without SQLAlchemy's statement dump."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error) or type(error).__name__
    return text.splitlines()[0][:300]


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    give_up_after: float,
    log: logging.Logger,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
) -> T:
    """`call()` again after a transient database error, with backoff, for up to `give_up_after` seconds;
    the last error is raised after that. Any other error is raised at once."""
    deadline = time.monotonic() + give_up_after
    delay = first_delay
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as e:
            attempt += 1
            if not is_transient(e) or time.monotonic() + delay > deadline:
                raise
            if attempt == 1 or attempt % 10 == 0:
                log.warning(
                    "%s: the database is unavailable (%s); retrying for up to %.0f s", what, brief(e), give_up_after
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
