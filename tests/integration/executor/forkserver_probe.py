"""Functions the fork server tests call in the server (warm-ups) and in its children (see test_forkserver_warm.py)."""

from __future__ import annotations

from collections.abc import Sequence

WARMED = 0


def warm() -> None:
    global WARMED
    WARMED += 1


def broken_warm() -> None:
    raise RuntimeError("this warm-up always fails")


def warmed(args: Sequence[str]) -> int:
    """The child's exit code says how often the server warmed up before it forked this child: 40 + WARMED."""
    return 40 + WARMED
