"""TaskFlow: an extract -> transform -> load pipeline of the shop team, written as decorated functions.

What it shows:
- `@dag`: the function builds the DAG when called; its parameters (`min_amount`, `currency`) become
  the DAG's params, so a run's conf can override them (`spinner dags trigger ... --conf`).
- `@task(multiple_outputs=True)`: each key of the returned dict is its own XCom, so
  `extract()["orders"]` passes only the orders on (a `-> dict[...]` return annotation, as on
  `transform`, means the same, as in Airflow).
- `load(transform(...))`: calling tasks with each other's results creates the dependencies, and the
  values travel between the tasks' separate processes through XCom (JSON, at most 64 KiB each).
- task arguments (`retries`, `retry_delay`) given to the decorator, `.override(task_id=...)` to use
  one function twice, `@task.bash` whose function returns the command, and an XComArg used in a
  classic operator's templated field (`env`), which also makes it a downstream of that task.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner import BashOperator, Tier, dag, task

# The day's orders as the shop's export gives them (inline: examples need no outside servers).
ORDERS = [
    {"id": 1001, "customer": "ada", "amount": 120.0, "country": "DE"},
    {"id": 1002, "customer": "bob", "amount": 15.5, "country": "FR"},
    {"id": 1003, "customer": "cy", "amount": 310.25, "country": "DE"},
    {"id": 1004, "customer": "dee", "amount": 42.0, "country": "NL"},
    {"id": 1005, "customer": "eve", "amount": 8.75, "country": "FR"},
]


@dag(
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="shop",
    tags=["shop", "example", "taskflow"],
)
def shop_orders_etl(min_amount: float = 10.0, currency: str = "EUR") -> None:
    """Daily orders: extract, keep the real ones, total them per country, load the totals."""

    @task(multiple_outputs=True)
    def extract(ds: str = "") -> dict[str, Any]:
        print(f"extracted {len(ORDERS)} orders for {ds}")
        return {"orders": ORDERS, "exported_for": ds}

    @task(retries=2, retry_delay=dt.timedelta(seconds=5))
    def transform(orders: list[dict[str, Any]], min_amount: float) -> dict[str, float]:
        totals: dict[str, float] = {}
        for order in orders:
            if order["amount"] >= min_amount:
                totals[order["country"]] = round(totals.get(order["country"], 0.0) + order["amount"], 2)
        return totals

    @task
    def load(totals: dict[str, float], currency: str) -> str:
        lines = [f"{country}: {amount:.2f} {currency}" for country, amount in sorted(totals.items())]
        print("loaded totals:\n" + "\n".join(lines))
        return f"{len(totals)} countries, {sum(totals.values()):.2f} {currency}"

    @task
    def count(orders: list[dict[str, Any]]) -> int:
        return len(orders)

    @task.bash
    def announce(summary: str, orders: int) -> str:
        return f"echo 'run {{{{ run_id }}}}: {orders} orders, {summary}'"

    data = extract()
    summary = load(transform(data["orders"], min_amount), currency)
    announce(summary, count.override(task_id="count_orders")(data["orders"]))
    BashOperator(
        task_id="archive",
        bash_command='echo "archiving the export of $EXPORTED_FOR"',
        env={"EXPORTED_FOR": data["exported_for"]},
    )


shop_orders_etl()
