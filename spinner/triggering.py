"""What triggered a DAG run, when a task did (TriggerDagRunOperator).

The executor asks the owning scheduler for the run with `triggered_by` set to `encode(...)` of the
triggering try; the scheduler decodes it into the run's triggering_dag_id / run_id / task_id
columns and keeps a short readable `triggered_by`. Ids cannot contain '/' (task and DAG ids are
letters, digits, '_', '-' and '.'; run ids refuse '/'), so the form is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spinner.sdk.dag import ID_RE

PREFIX = "task:"
# The run id a new run may be given (docs/authoring.md "Run ids"), by a client or by a task's
# TriggerDagRunOperator: what the scheduler's own ids look like (manual__2026-06-01T12:00:00+00:00),
# and never an option (--help), a control or bidi character, a NUL, a '/'.
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,249}", re.ASCII)


def run_id_problem(run_id: str) -> str | None:
    """Why `run_id` cannot name a new run, or None when it can."""
    if RUN_ID_RE.fullmatch(run_id):
        return None
    return (
        "run_id must start with a letter or digit and have only letters, digits and _ . : + - "
        f"(at most 250 characters; like manual__2026-06-01T12:00:00+00:00), not {run_id[:60]!r}"
    )


@dataclass(frozen=True)
class TriggeringTask:
    dag_id: str
    run_id: str
    task_id: str

    def encode(self) -> str:
        return f"{PREFIX}{self.dag_id}/{self.task_id}/{self.run_id}"

    @property
    def label(self) -> str:
        """What the run's triggered_by shows: the task, as dag_id.task_id."""
        return f"task {self.dag_id}.{self.task_id}"


def person(username: str) -> str:
    """The triggered_by of a person's trigger: a username that looks like a task's form cannot pose as one."""
    return f"user {username}" if username.startswith(PREFIX) else username


def decode(triggered_by: str) -> TriggeringTask | None:
    if not triggered_by.startswith(PREFIX):
        return None
    parts = triggered_by[len(PREFIX) :].split("/", 2)
    if len(parts) != 3 or not ID_RE.match(parts[0]) or not ID_RE.match(parts[1]) or not parts[2]:
        return None
    return TriggeringTask(dag_id=parts[0], task_id=parts[1], run_id=parts[2])
