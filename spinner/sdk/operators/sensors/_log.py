"""The sensors' log lines, in the runner's format, without importing the runner (DAG files load fast)."""

from __future__ import annotations

import datetime as dt


def say(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"[{stamp}] {message}", flush=True)
