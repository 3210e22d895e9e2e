"""`macros` in templates: Airflow's date helpers and the modules it exposes (datetime, time, uuid, random)."""

from __future__ import annotations

import datetime
import random as _random
import time
import uuid
from types import SimpleNamespace


def ds_add(ds: str, days: int) -> str:
    """`ds_add("2026-01-05", -2)` is "2026-01-03"."""
    if not days:
        return ds
    value = datetime.datetime.strptime(ds, "%Y-%m-%d") + datetime.timedelta(days=days)
    return value.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """`ds_format("2026-01-05", "%Y-%m-%d", "%d/%m/%y")` is "05/01/26"."""
    return datetime.datetime.strptime(str(ds), input_format).strftime(output_format)


def datetime_diff_for_humans(dt: datetime.datetime, since: datetime.datetime | None = None) -> str:
    """ "3 hours ago" / "in 2 days": the difference between two times, roughly."""
    since = since or datetime.datetime.now(datetime.UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    if since.tzinfo is None:
        since = since.replace(tzinfo=datetime.UTC)
    seconds = (dt - since).total_seconds()
    amount, unit = abs(seconds), "second"
    for size, name in ((60, "minute"), (3600, "hour"), (86400, "day"), (86400 * 30, "month"), (86400 * 365, "year")):
        if abs(seconds) >= size:
            amount, unit = abs(seconds) / size, name
    n = int(amount)
    text = f"{n} {unit}{'s' if n != 1 else ''}"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def make_macros() -> SimpleNamespace:
    """The `macros` namespace templates see (`{{ macros.ds_add(ds, 7) }}`)."""
    return SimpleNamespace(
        ds_add=ds_add,
        ds_format=ds_format,
        datetime_diff_for_humans=datetime_diff_for_humans,
        datetime=datetime.datetime,
        timedelta=datetime.timedelta,
        date=datetime.date,
        time=time,
        uuid=uuid,
        random=_random.random,
    )
