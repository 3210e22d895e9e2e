"""Sensors that need no outside server: a time window, an HTTP health check, a Python condition.

- `settle`: TimeDeltaSensor in reschedule mode, 5 s after the run's data interval ends. The
  scheduler decides it alone (no process is ever started; its try_number stays 0).
- `gateway_healthy`: HttpSensor on the Spinner gateway's own health endpoint (the run's conf
  `health_url` points elsewhere), with a response_check on the JSON.
- `disk_has_room`: PythonSensor in poke mode with exponential backoff.
- `optional_feed`: FileSensor with soft_fail: when the feed has not come within 3 s it is
  skipped, not failed, and the report runs anyway (trigger rule all_done).
"""

from __future__ import annotations

import datetime as dt
import shutil

from spinner import DAG, BashOperator, FileSensor, HttpSensor, PythonSensor, Tier, TimeDeltaSensor, TriggerRule


def disk_has_room(params: dict[str, str]) -> bool:
    free = shutil.disk_usage("/tmp").free
    print(f"{free / 2**30:.1f} GiB free in /tmp")
    return free > 10 * 2**20


with DAG(
    dag_id="ops_platform_checks",
    tier=Tier.TIER2,
    owner="ops",
    tags=["ops", "sensors", "example"],
    description="Checks before the nightly maintenance",
    params={"health_url": "http://127.0.0.1:8080/api/v1/health"},
) as dag:
    settle = TimeDeltaSensor(task_id="settle", delta=dt.timedelta(seconds=5), mode="reschedule")
    healthy = HttpSensor(
        task_id="gateway_healthy",
        endpoint="{{ params.health_url }}",
        response_check=lambda response: response.json().get("status") == "ok",
        poke_interval=1,
        timeout=60,
    )
    room = PythonSensor(
        task_id="disk_has_room", python_callable=disk_has_room, poke_interval=1, exponential_backoff=True, timeout=60
    )
    feed = FileSensor(
        task_id="optional_feed", filepath="/tmp/spinner-optional-feed/*.json", poke_interval=1, timeout=3,
        soft_fail=True,
    )  # fmt: skip
    report = BashOperator(task_id="report", bash_command="echo checks done", trigger_rule=TriggerRule.ALL_DONE)
    [settle, healthy, room, feed] >> report
