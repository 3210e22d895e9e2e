"""The production clock. Engines take a clock as an argument; this is what the entry points pass."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
