"""A fork server warms up once, before it forks, and its children start warm (spinner/forkserver.py).

`module:function` in the preload list is imported and called in the server: the local backend uses it to
parse the S3 client's models once (spinner.bundles.warm_s3), which every task runner that archives its log
did on its own before. A warm-up that fails leaves a server that forks all the same. Real processes."""

from __future__ import annotations

import asyncio

from spinner.forkserver import ForkServer

PROBE = "tests.integration.executor.forkserver_probe"


class Exits:
    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    async def __call__(self, key: str, code: int, pid: int) -> None:
        self.seen[key] = code


async def exit_code(preload: list[str], key: str) -> int:
    exits = Exits()
    server: ForkServer[str] = ForkServer(preload, exits)
    try:
        assert await server.spawn(key, f"{PROBE}:warmed", []) > 0
        deadline = asyncio.get_running_loop().time() + 60
        while key not in exits.seen:
            assert asyncio.get_running_loop().time() < deadline, f"the child never ended (saw {exits.seen})"
            await asyncio.sleep(0.02)
        return exits.seen[key]
    finally:
        await server.aclose()


async def test_a_warm_up_runs_once_in_the_server_and_its_children_inherit_it() -> None:
    assert await exit_code([f"{PROBE}:warm"], "warm") == 41
    assert await exit_code([PROBE], "plain") == 40  # a plain entry is imported, not called


async def test_a_failing_warm_up_leaves_a_server_that_forks() -> None:
    assert await exit_code([f"{PROBE}:broken_warm", f"{PROBE}:warm"], "broken") == 41
