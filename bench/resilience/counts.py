"""What a scenario counts once its runs have ended (or its deadline passed): from the database (runs,
task instances and their history), from the tasks' own records (executions), and from the log files
(and the S3 archive when there is one)."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bench.resilience.workload import DAG_ID, Execution, Workload, read_records
from spinner.db.models import DagRun, TaskInstance, TaskInstanceHistory
from spinner.logpaths import complete_marker, local_log_path
from spinner.tasklog import archive_key, marker_key

ENDED_TI = ("success", "failed", "upstream_failed", "skipped")
FAILED_TRY = ("failed", "up_for_retry")


@dataclass(frozen=True)
class Try:
    run_id: str
    task_id: str
    try_number: int
    state: str


async def read_tries(engine: AsyncEngine) -> tuple[Counter[str], list[Try], list[Try]]:
    """(run states, every try the database knows, the task instances that have not ended)."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as s:
        runs = Counter(
            str(state) for state in (await s.execute(select(DagRun.state).where(DagRun.dag_id == DAG_ID))).scalars()
        )
        tis = (await s.execute(select(TaskInstance).where(TaskInstance.dag_id == DAG_ID))).scalars().all()
        history = (
            (await s.execute(select(TaskInstanceHistory).where(TaskInstanceHistory.dag_id == DAG_ID))).scalars().all()
        )
    tries: dict[tuple[str, str, int], Try] = {}
    for h in history:
        tries[(h.run_id, h.task_id, h.try_number)] = Try(h.run_id, h.task_id, h.try_number, h.state)
    unended = []
    for ti in tis:
        state = ti.state or "none"
        if state not in ENDED_TI:
            unended.append(Try(ti.run_id, ti.task_id, ti.try_number, state))
        if ti.try_number > 0:  # 0: never queued (upstream_failed before it could run)
            tries[(ti.run_id, ti.task_id, ti.try_number)] = Try(ti.run_id, ti.task_id, ti.try_number, state)
    return runs, sorted(tries.values(), key=lambda t: (t.run_id, t.task_id, t.try_number)), unended


def count(
    workload: Workload,
    runs: Counter[str],
    tries: list[Try],
    unended: list[Try],
    records: Path,
    log_dir: Path,
    archived: set[str] | None,
    logs_prefix: str,
) -> dict[str, Any]:
    executions = read_records(records)
    by_try = {(t.run_id, t.task_id, t.try_number): t for t in tries}
    repeated = []  # an execution started after an earlier one of the same task had run its command to the end
    same_try_twice = 0
    false_failures = []  # a try recorded as failed whose command had run to its end
    for (run_id, task_id), runs_of_task in executions.items():
        succeeded_at: float | None = None
        starts: Counter[int] = Counter()
        for e in runs_of_task:
            starts[e.try_number] += 1
            if succeeded_at is not None and e.started >= succeeded_at:
                repeated.append(f"{run_id}.{task_id} try {e.try_number}")
            if e.ended is not None and succeeded_at is None:
                succeeded_at = e.ended
        same_try_twice += sum(n - 1 for n in starts.values() if n > 1)
        for e in runs_of_task:
            t = by_try.get((run_id, task_id, e.try_number))
            if e.ended is not None and t is not None and t.state in FAILED_TRY:
                false_failures.append(f"{run_id}.{task_id} try {e.try_number}")
    ended = [t for t in tries if t.state in ENDED_TI or t.state in FAILED_TRY]
    incomplete_logs = [t for t in ended if not _log_complete(log_dir, t)]
    without_output = [t for t in ended if _log_without_output(log_dir, t)]
    result: dict[str, Any] = {
        "runs_success": runs.get("success", 0),
        "runs_failed": runs.get("failed", 0),
        "runs_unended": sum(n for state, n in runs.items() if state not in ("success", "failed")),
        "runs_missing": workload.runs - sum(runs.values()),
        "tries": len(tries),
        "tries_failed": sum(1 for t in tries if t.state in FAILED_TRY),
        "false_failures": len(false_failures),
        "executions": sum(len(v) for v in executions.values()),
        "executions_unfinished": sum(1 for v in executions.values() for e in v if e.ended is None),
        "tasks_never_run": workload.total - len(executions),
        "lost": len(unended),
        "repeated": len(repeated),
        "same_try_twice": same_try_twice,
        "ended_tries": len(ended),
        "logs_complete": len(ended) - len(incomplete_logs),
        "logs_without_output": len(without_output),
        "examples": {
            "repeated": repeated[:5],
            "false_failures": false_failures[:5],
            "lost": [f"{t.run_id}.{t.task_id} try {t.try_number} {t.state}" for t in unended[:5]],
            "incomplete_logs": [f"{t.run_id}.{t.task_id} try {t.try_number}" for t in incomplete_logs[:5]],
            "logs_without_output": [f"{t.run_id}.{t.task_id} try {t.try_number}" for t in without_output[:5]],
        },
    }
    if archived is not None:
        unarchived = [t for t in ended if not _archived(archived, logs_prefix, t)]
        result["logs_archived"] = len(ended) - len(unarchived)
        result["examples"]["unarchived"] = [
            f"{t.run_id}.{t.task_id} try {t.try_number} {t.state}" for t in unarchived[:5]
        ]
    return result


def _archived(keys: set[str], prefix: str, t: Try) -> bool:
    key = archive_key(prefix, DAG_ID, t.run_id, t.task_id, t.try_number)
    return key in keys and marker_key(key) in keys


def _log_complete(log_dir: Path, t: Try) -> bool:
    path = local_log_path(log_dir, DAG_ID, t.run_id, t.task_id, t.try_number)
    return path.exists() and complete_marker(path).exists()


def _log_without_output(log_dir: Path, t: Try) -> bool:
    """The local log holds nothing but the executor's own closing line (no line of the runner's): the
    try's output never reached it, though the marker may say complete."""
    path = local_log_path(log_dir, DAG_ID, t.run_id, t.task_id, t.try_number)
    try:
        with open(path, errors="replace") as f:
            first = f.readline()
    except OSError:
        return False
    return first.startswith("[spinner] task process exited")


def longest_idle(executions: dict[tuple[str, str], list[Execution]], since: float) -> float | None:
    """The longest time from `since` in which no task started (between two starts, the first gap from
    `since` itself), up to the last start; None when no task started after `since`."""
    starts = sorted(e.started for v in executions.values() for e in v if e.started >= since)
    if not starts:
        return None
    return max(b - a for a, b in itertools.pairwise([since, *starts]))
