"""Clear errors for arguments a DAG or an operator does not take, with what to write instead.

Python's own TypeError names neither the DAG nor the task, and says nothing to an author whose
Airflow 2 habit (schedule_interval, provide_context) is the cause.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from spinner.sdk.exceptions import DagDefinitionError

# Arguments of Airflow 2 (or of other schedulers) that authors bring along, and what replaces them.
HINTS: dict[str, str] = {
    "schedule_interval": "Airflow 3 and Spinner call it schedule=",
    "timetable": "pass the cron string, preset or timedelta as schedule=",
    "concurrency": "Airflow 3 and Spinner call it max_active_tasks=",
    "provide_context": "not needed: a callable gets the context values its parameters name",
    "sla": "SLAs were removed in Airflow 3",
    "sla_miss_callback": "SLAs were removed in Airflow 3",
    "execution_date": "Airflow 3 and Spinner call it logical_date",
}


def unknown_arguments(where: str, kind: str, unknown: Iterable[str], accepted: Iterable[str]) -> DagDefinitionError:
    """The error for `unknown` keywords given to a DAG or operator that takes `accepted`."""
    choices = sorted(set(accepted))
    parts = []
    for name in sorted(unknown):
        hint = HINTS.get(name)
        if hint is None and (close := difflib.get_close_matches(name, choices, n=1, cutoff=0.75)):
            hint = f"did you mean {close[0]}?"
        parts.append(f"'{name}'" + (f" ({hint})" if hint else ""))
    return DagDefinitionError(f"{where}: unknown {kind} argument(s) {', '.join(parts)}")
