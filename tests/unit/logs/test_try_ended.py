"""When the logs service takes a try as ended (a follow of its unmarked log may then end): from its task instance."""

from __future__ import annotations

import datetime as dt

import pytest

from services.logs.engine import try_has_ended
from services.logs.queries import TaskProgress

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("found", "ended"),
    [
        (TaskProgress("running", 3, None), False),
        (TaskProgress("queued", 3, None), False),
        (TaskProgress("up_for_reschedule", 3, NOW), False),  # a sensor between pokes: the next one appends
        (TaskProgress("scheduled", 3, NOW), False),  # ... and its next poke is on its way
        (TaskProgress("running", 2, None), False),  # try 3 is yet to come
        (TaskProgress("success", 3, None), True),
        (TaskProgress("failed", 3, None), True),
        (TaskProgress("skipped", 3, None), True),
        (TaskProgress("up_for_retry", 3, None), True),
        (TaskProgress("scheduled", 3, None), True),  # retried, not queued yet
        (TaskProgress(None, 3, None), True),  # cleared
        (TaskProgress("running", 4, None), True),  # the next try runs
        (TaskProgress("queued", 4, None), True),
        (None, True),  # no such task instance any more
    ],
)
def test_a_try_has_ended_once_it_is_no_longer_the_one_that_runs_or_waits(
    found: TaskProgress | None, ended: bool
) -> None:
    assert try_has_ended(found, 3) is ended
