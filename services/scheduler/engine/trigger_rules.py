"""Trigger rules: what a task does given its upstream tasks' states (Airflow's semantics)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum


class Decision(StrEnum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


SUCCESS = "success"
FAILED = "failed"
SKIPPED = "skipped"
UPSTREAM_FAILED = "upstream_failed"
TERMINAL = frozenset({SUCCESS, FAILED, SKIPPED, UPSTREAM_FAILED})


def evaluate(rule: str, upstream_states: Iterable[str | None]) -> Decision:
    """Decides for one task whose upstream tasks are in `upstream_states`."""
    states = list(upstream_states)
    if not states:
        return Decision.RUN
    counts = Counter(states)
    total = len(states)
    success = counts[SUCCESS]
    skipped = counts[SKIPPED]
    failed = counts[FAILED] + counts[UPSTREAM_FAILED]
    done = success + skipped + failed
    all_done = done == total

    if rule == "always":
        return Decision.RUN
    if rule == "all_success":
        if failed:
            return Decision.UPSTREAM_FAILED
        if skipped:
            return Decision.SKIP
        return Decision.RUN if success == total else Decision.WAIT
    if rule == "all_failed":
        if success or skipped:
            return Decision.SKIP
        return Decision.RUN if all_done else Decision.WAIT
    if rule == "all_done":
        return Decision.RUN if all_done else Decision.WAIT
    if rule == "one_success":
        if success:
            return Decision.RUN
        if not all_done:
            return Decision.WAIT
        return Decision.SKIP if skipped == total else Decision.UPSTREAM_FAILED
    if rule == "one_failed":
        if failed:
            return Decision.RUN
        return Decision.SKIP if all_done else Decision.WAIT
    if rule == "none_failed":
        if failed:
            return Decision.UPSTREAM_FAILED
        return Decision.RUN if all_done else Decision.WAIT
    if rule == "none_failed_min_one_success":  # the join after a branch: runs if any branch ran and none failed
        if failed:
            return Decision.UPSTREAM_FAILED
        if not all_done:
            return Decision.WAIT
        return Decision.SKIP if skipped == total else Decision.RUN
    if rule == "all_skipped":
        if success or failed:
            return Decision.SKIP
        return Decision.RUN if all_done else Decision.WAIT
    if rule == "one_done":  # one upstream succeeded or failed (upstream_failed and skipped do not count)
        if success or counts[FAILED]:
            return Decision.RUN
        return Decision.SKIP if all_done else Decision.WAIT
    if rule == "all_done_min_one_success":
        if not all_done:
            return Decision.WAIT
        if success:
            return Decision.RUN
        return Decision.SKIP if skipped == total else Decision.UPSTREAM_FAILED
    if rule == "none_skipped":
        if skipped:
            return Decision.SKIP
        return Decision.RUN if all_done else Decision.WAIT
    raise ValueError(f"unknown trigger rule {rule!r}")
