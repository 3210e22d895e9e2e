"""@task.sensor, @task.short_circuit and @task.branch: the shop's daily refund review as functions.

What it shows:
- `@task.sensor`: waits until the day's refund export is complete (here: the export task's XCom
  says so), poking every 2 seconds for at most 5 minutes; returning `PokeReturnValue(True, value)`
  ends the wait and pushes `value` as its XCom.
- `@task.short_circuit`: with no refunds to review, everything after it is skipped.
- `@task.branch`: large refund totals go to a manual review, small ones are approved at once; the
  branch not taken is skipped, and `notify` joins both with `none_failed_min_one_success`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner import PokeReturnValue, Tier, TriggerRule, dag, task

REFUNDS = [{"order": 1002, "amount": 15.5}, {"order": 1005, "amount": 8.75}, {"order": 1017, "amount": 240.0}]


@dag(
    tier=Tier.TIER2,
    schedule="0 7 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="shop",
    tags=["shop", "example", "taskflow", "branching"],
)
def shop_refund_review(review_threshold: float = 100.0) -> None:
    """Waits for the refund export, skips quiet days, sends big totals to a person."""

    @task
    def export_refunds(ds: str = "") -> dict[str, Any]:
        print(f"exported {len(REFUNDS)} refunds for {ds}")
        return {"complete": True, "refunds": REFUNDS}

    @task.sensor(poke_interval=2, timeout=300, mode="poke")
    def export_complete(export: dict[str, Any]) -> PokeReturnValue:
        return PokeReturnValue(is_done=bool(export["complete"]), xcom_value=export["refunds"])

    @task.short_circuit
    def any_refunds(refunds: list[dict[str, Any]]) -> bool:
        print(f"{len(refunds)} refunds to review")
        return len(refunds) > 0

    @task.branch
    def route(refunds: list[dict[str, Any]], threshold: float) -> str:
        total = sum(r["amount"] for r in refunds)
        print(f"refund total {total:.2f} against threshold {threshold:.2f}")
        return "manual_review" if total > threshold else "auto_approve"

    @task
    def manual_review(refunds: list[dict[str, Any]]) -> int:
        print(f"opened a review ticket for {len(refunds)} refunds")
        return len(refunds)

    @task
    def auto_approve(refunds: list[dict[str, Any]]) -> int:
        print(f"approved {len(refunds)} refunds")
        return len(refunds)

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def notify() -> None:
        print("refund review done")

    refunds = export_complete(export_refunds())
    gate = any_refunds(refunds)
    chosen = route(refunds, review_threshold)
    gate >> chosen
    chosen >> [manual_review(refunds), auto_approve(refunds)] >> notify()


shop_refund_review()
