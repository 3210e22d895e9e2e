"""Trigger rules decide what a downstream task does once its upstream tasks have ended."""

from __future__ import annotations

import pytest

from services.scheduler.engine.trigger_rules import Decision, evaluate
from spinner.sdk.trigger_rule import TriggerRule

S, F, K, U = "success", "failed", "skipped", "upstream_failed"


@pytest.mark.parametrize(
    ("rule", "upstream", "expected"),
    [
        ("all_success", [S, S], Decision.RUN),
        ("all_success", [S, None], Decision.WAIT),
        ("all_success", [S, F], Decision.UPSTREAM_FAILED),
        ("all_success", [S, U], Decision.UPSTREAM_FAILED),
        ("all_success", [S, K], Decision.SKIP),
        ("all_success", [S, "running"], Decision.WAIT),
        ("all_success", [S, "up_for_retry"], Decision.WAIT),
        ("all_failed", [F, U], Decision.RUN),
        ("all_failed", [F, S], Decision.SKIP),
        ("all_failed", [F, None], Decision.WAIT),
        ("all_done", [S, F, K], Decision.RUN),
        ("all_done", [S, "running"], Decision.WAIT),
        ("one_success", [S, None], Decision.RUN),
        ("one_success", [F, F], Decision.UPSTREAM_FAILED),
        ("one_success", [K, K], Decision.SKIP),
        ("one_success", [F, None], Decision.WAIT),
        ("one_failed", [F, None], Decision.RUN),
        ("one_failed", [S, S], Decision.SKIP),
        ("one_failed", [S, None], Decision.WAIT),
        ("none_failed", [S, K], Decision.RUN),
        ("none_failed", [S, F], Decision.UPSTREAM_FAILED),
        ("none_failed", [S, None], Decision.WAIT),
        ("none_skipped", [S, F], Decision.RUN),
        ("none_skipped", [S, K], Decision.SKIP),
        ("none_skipped", [F, None], Decision.WAIT),
        ("always", [None, "running"], Decision.RUN),
        # The join after a branch: the branch not taken is skipped, the one taken succeeded.
        ("none_failed_min_one_success", [S, K], Decision.RUN),
        ("none_failed_min_one_success", [K, K], Decision.SKIP),
        ("none_failed_min_one_success", [S, F], Decision.UPSTREAM_FAILED),
        ("none_failed_min_one_success", [K, U], Decision.UPSTREAM_FAILED),
        ("none_failed_min_one_success", [S, None], Decision.WAIT),
        ("none_failed_min_one_success", [K, "running"], Decision.WAIT),
        ("all_skipped", [K, K], Decision.RUN),
        ("all_skipped", [K, S], Decision.SKIP),
        ("all_skipped", [K, F], Decision.SKIP),
        ("all_skipped", [K, U], Decision.SKIP),
        ("all_skipped", [K, None], Decision.WAIT),
        ("one_done", [S, None], Decision.RUN),
        ("one_done", [F, "running"], Decision.RUN),
        ("one_done", [K, U], Decision.SKIP),
        ("one_done", [K, None], Decision.WAIT),
        ("all_done_min_one_success", [S, F, K], Decision.RUN),
        ("all_done_min_one_success", [S, None], Decision.WAIT),
        ("all_done_min_one_success", [F, U], Decision.UPSTREAM_FAILED),
        ("all_done_min_one_success", [F, K], Decision.UPSTREAM_FAILED),
        ("all_done_min_one_success", [K, K], Decision.SKIP),
    ],
)
def test_rule_decides_from_upstream_states(rule: str, upstream: list[str | None], expected: Decision) -> None:
    assert evaluate(rule, upstream) is expected


@pytest.mark.parametrize("rule", [r.value for r in TriggerRule])
def test_task_without_upstream_runs(rule: str) -> None:
    assert evaluate(rule, []) is Decision.RUN


def test_unknown_rule_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown trigger rule 'sometimes'"):
        evaluate("sometimes", ["success"])


@pytest.mark.parametrize("rule", [r.value for r in TriggerRule])
def test_every_sdk_rule_is_known_to_the_scheduler(rule: str) -> None:
    assert evaluate(rule, ["success"]) in Decision
