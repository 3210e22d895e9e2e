"""Wait for a partner's daily file, then load it: a FileSensor in reschedule mode.

The partner drops `orders_<ds_nodash>.csv` into an inbox folder some time after midnight. The
sensor pokes every 10 seconds (doubling up to 5 minutes) for up to 6 hours; between pokes it
holds no process and no pool slot (state up_for_reschedule), so hundreds of such waits cost the
platform nothing. If the file never comes the try fails without retrying, saying the sensor timed
out; `load` then ends upstream_failed. Run it by hand with another inbox:
`spinner dags trigger partner_orders --conf '{"inbox": "/tmp/my-inbox"}'`.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from spinner import DAG, FileSensor, PythonOperator, Tier


def load_orders(params: dict[str, Any], ds_nodash: str) -> int:
    path = Path(params["inbox"]) / f"orders_{ds_nodash}.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    total = sum(float(r.get("amount") or 0) for r in rows)
    print(f"loaded {len(rows)} orders from {path.name}, {total:.2f} in total")
    return len(rows)


with DAG(
    dag_id="partner_orders",
    tier=Tier.TIER2,
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    owner="partners",
    tags=["partners", "sensors", "example"],
    description="Load the partner's daily orders file when it arrives",
    params={"inbox": "/tmp/spinner-partner-inbox"},
) as dag:
    arrived = FileSensor(
        task_id="wait_for_orders_file",
        filepath="{{ params.inbox }}/orders_{{ ds_nodash }}.csv",
        mode="reschedule",
        poke_interval=10,
        exponential_backoff=True,
        max_wait=dt.timedelta(minutes=5),
        timeout=dt.timedelta(hours=6),
    )
    load = PythonOperator(task_id="load", python_callable=load_orders)
    arrived >> load
