"""LatestOnlyOperator: lets the DAG go on only in the run of the latest schedule interval."""

from __future__ import annotations

import datetime as dt
from typing import Any

from spinner.sdk import skipping
from spinner.sdk.operators.base import BaseOperator


class LatestOnlyOperator(BaseOperator):
    """Skips its direct downstream tasks (the rest follows by trigger rules) unless this run's data
    interval is the latest one that has ended: `data_interval_end < now <= the next interval's end`.
    Manual runs are never skipped, and neither is the last run of a DAG whose schedule has ended."""

    def execute(self, context: dict[str, Any]) -> Any:
        if self.is_latest(context, dt.datetime.now(dt.UTC)):
            print("Latest run: proceeding with the downstream tasks", flush=True)
            return None
        skipped = skipping.direct_downstream(self)
        print(f"Not the latest run: skipping {sorted(skipped)}", flush=True)
        skipping.skip(skipped)
        return None

    def is_latest(self, context: dict[str, Any], now: dt.datetime) -> bool:
        if context["dag_run"].run_type == "manual":
            return True
        dag = context["dag"]
        end: dt.datetime = context["data_interval_end"]
        start: dt.datetime = context["data_interval_start"]
        following = dag.timetable.next_dagrun_info(
            last_data_interval_end=end, start_date=dag.start_date or start, catchup=True, now=now
        )
        if following is None:
            return True
        return bool(end < now <= following.end)
