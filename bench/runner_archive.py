"""CPU of a task runner's S3 log archive, with and without the fork server's warm-up (issue 15, item 2).

    python -m bench.runner_archive [--children 20] [--json]

A profile of `make resilience` (py-spy on the executor's fork server and its children) found 98% of a
forked runner's CPU in archiving its log: importing aioboto3 and botocore and parsing S3's models, once
per runner. The local backend now has its fork server do that once (`spinner.bundles:warm_s3`) when
logs_bucket is set. This starts moto's S3 API (in this process, as make resilience does) and, for each
mode, a real fork server with the runner's preload list (services/executor/backends/local.py), forks
--children children that each archive a log as the runner does (two PUTs through spinner.bundles.s3_client,
a fresh event loop), and reads the CPU its reaped children used from /proc (cutime + cstime).

With --json the last line is one JSON object: {"machine": ..., "cold": {...}, "warm": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.machine import cpu_seconds, describe
from bench.resilience.servers import S3
from services.executor.backends.local import RUNNER_PRELOAD, S3_WARM
from spinner.forkserver import ForkServer

BUCKET = "bench-logs"
LOG = b"".join(f"[2026-12-03T10:00:00.{i:06d}Z] line {i} of the task's output\n".encode() for i in range(200))


def archive(args: Sequence[str]) -> int:
    """A forked child: what LogStream._upload does (spinner/runner/logstream.py)."""
    from spinner.bundles import S3Location, s3_client

    endpoint, key = args

    async def upload() -> None:
        async with s3_client(S3Location(bucket=BUCKET, prefix="", endpoint_url=endpoint), read_timeout=30) as s3:
            await s3.put_object(Bucket=BUCKET, Key=key, Body=LOG, ContentType="text/plain; charset=utf-8")
            await s3.put_object(Bucket=BUCKET, Key=key + ".done", Body=b"{}", ContentType="application/json")

    asyncio.run(upload())
    return 0


async def measure(preload: list[str], s3: S3, children: int, mode: str) -> dict[str, Any]:
    ended: dict[str, int] = {}

    async def on_exit(key: str, code: int, pid: int) -> None:
        ended[key] = code

    server: ForkServer[str] = ForkServer(preload, on_exit)
    try:
        await server.spawn("first", "builtins:len", [])  # the server is up and warm
        while "first" not in ended:
            await asyncio.sleep(0.01)
        proc = server._proc
        assert proc is not None
        before = cpu_seconds(proc.pid, children=True)
        started = time.monotonic()
        for i in range(children):  # one at a time: the figure is a runner's own CPU, not a queue's
            key = f"{mode}-{i}"
            await server.spawn(key, "bench.runner_archive:archive", [s3.endpoint, f"{mode}/{i}.log"])
            while key not in ended:
                await asyncio.sleep(0.005)
        wall = time.monotonic() - started
        cpu = cpu_seconds(proc.pid, children=True) - before
        failed = sum(1 for k, code in ended.items() if k != "first" and code != 0)
    finally:
        await server.aclose()
    archived = len([k for k in s3.keys(BUCKET) if k.startswith(f"{mode}/") and k.endswith(".log")])
    return {"children": children, "failed": failed, "archived": archived,
            "cpu_ms_per_child": round(cpu * 1000 / children, 1), "wall_ms_per_child": round(wall * 1000 / children, 1)}  # fmt: skip


async def main_async(children: int) -> dict[str, Any]:
    s3 = S3()
    s3.start()
    try:
        s3.create_bucket(BUCKET)
        cold = await measure(list(RUNNER_PRELOAD), s3, children, "cold")
        warm = await measure([*RUNNER_PRELOAD, S3_WARM], s3, children, "warm")
    finally:
        s3.stop()
    return {"cold": cold, "warm": warm}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--children", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    os.environ.update(S3.ACCESS)  # the children inherit moto's test credentials
    result = {"machine": describe(), **asyncio.run(main_async(args.children))}
    for mode in ("cold", "warm"):
        r = result[mode]
        print(f"{mode}: {r['cpu_ms_per_child']} ms CPU and {r['wall_ms_per_child']} ms per archiving child "
              f"({r['archived']}/{r['children']} archived, {r['failed']} failed)", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps(result))
    return 1 if any(result[m]["failed"] or result[m]["archived"] != args.children for m in ("cold", "warm")) else 0


if __name__ == "__main__":
    raise SystemExit(main())
