"""A fork server that answers slowly is waited for, not replaced (spinner/forkserver.py).

In `make resilience`, a machine at a load of 80 made the executor's fork server take over 30 s to answer;
each spawn then gave up, started the try as a fresh interpreter (a hundred forks' CPU) and the server
still forked the request it had been given: two runners per try, and the load fed itself. Real
processes: the server is frozen with SIGSTOP, as a starved process is."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from spinner.forkserver import ForkServer

CALL = "builtins:len"  # a child that returns len(args) as its exit code, at once


class Exits:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, key: str, code: int, pid: int) -> None:
        self.seen.append((key, code))


async def until(check: object, what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_frozen_fork_server_is_waited_for_and_forks_each_child_once(caplog: pytest.LogCaptureFixture) -> None:
    exits = Exits()
    server: ForkServer[str] = ForkServer([], exits)
    server.slow_after, server.hung_after = 0.2, 60.0
    try:
        await server.spawn("warm", CALL, [])
        proc = server._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            with caplog.at_level(logging.WARNING, logger="spinner.forkserver"):
                spawn = asyncio.create_task(server.spawn("slow", CALL, ["a", "b"]))
                await until(lambda: caplog.text.count("has not answered") >= 3, "three warnings of a slow server")
                assert not spawn.done(), spawn  # still waiting: no error, no fresh process in its place
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        pid = await asyncio.wait_for(spawn, 30)
        assert pid > 0
        await until(lambda: ("slow", 2) in exits.seen, f"the child's exit (saw {exits.seen})")
        assert [e for e in exits.seen if e[0] == "slow"] == [("slow", 2)], exits.seen  # forked once
        assert proc.returncode is None  # the same server, alive
    finally:
        await server.aclose()


async def test_a_hung_fork_server_is_killed_and_the_next_spawn_gets_a_new_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exits = Exits()
    server: ForkServer[str] = ForkServer([], exits)
    server.slow_after, server.hung_after = 0.2, 60.0  # an interpreter can take seconds to start on a busy machine
    try:
        await server.spawn("warm", CALL, [])
        hung = server._proc
        assert hung is not None
        os.kill(hung.pid, signal.SIGSTOP)
        server.hung_after = 1.0
        with caplog.at_level(logging.WARNING, logger="spinner.forkserver"), pytest.raises(OSError, match="stopped"):
            await asyncio.wait_for(server.spawn("lost", CALL, ["a"]), 30)  # the caller starts it afresh
        assert "stopping it" in caplog.text
        await asyncio.wait_for(hung.wait(), 10)
        server.hung_after = 60.0
        assert await server.spawn("next", CALL, ["a", "b", "c"]) > 0  # a new server
        await until(lambda: ("next", 3) in exits.seen, f"the new server's child (saw {exits.seen})")
        assert not [e for e in exits.seen if e[0] == "lost"], exits.seen  # never forked by the killed one
    finally:
        await server.aclose()
