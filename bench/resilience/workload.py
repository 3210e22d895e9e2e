"""The work a scenario runs: one generated DAG of BashOperator chains whose tasks keep their own record
of every execution, triggered as runs through the REST API.

Each execution of a task appends `start <epoch> <try>` to `<records>/<run_id>.<task_id>` before its
command's work (a sleep) and `end <epoch> <try>` after it, so executions, and executions of a command
that had already succeeded, are counted without asking the database.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from spinner import credentials

DAG_ID = "resilience"
PARTITION = "spinner_tier_1_0"


@dataclass(frozen=True)
class Workload:
    runs: int
    tasks: int
    retries: int
    task_seconds: float
    retry_delay: float

    @property
    def total(self) -> int:
        return self.runs * self.tasks

    def run_ids(self) -> list[str]:
        return [f"r{i:03d}" for i in range(self.runs)]

    def task_ids(self) -> list[str]:
        return [f"t{i:02d}" for i in range(self.tasks)]

    def dag_source(self, records: Path) -> str:
        """A chain of `tasks` tasks; every run of it may run at once."""
        record = f"{records}/$AIRFLOW_CTX_RUN_ID.$AIRFLOW_CTX_TASK_ID"
        command = (
            f'echo "start $(date +%s.%N) $AIRFLOW_CTX_TRY_NUMBER" >> "{record}"; sleep {self.task_seconds}; '
            f'echo "end $(date +%s.%N) $AIRFLOW_CTX_TRY_NUMBER" >> "{record}"'
        )
        return "\n".join(
            [
                "import datetime as dt",
                "from spinner import DAG, BashOperator, Tier",
                "",
                f"with DAG(dag_id={DAG_ID!r}, tier=Tier.TIER1, schedule=None, start_date=dt.datetime(2026, 1, 1,"
                " tzinfo=dt.UTC),",
                f"         max_active_runs={self.runs}, max_active_tasks={self.total},",
                f"         default_args={{'retries': {self.retries}, 'retry_delay': dt.timedelta(seconds="
                f"{self.retry_delay})}}) as dag:",
                f"    tasks = [BashOperator(task_id=f't{{i:02d}}', bash_command={command!r}) for i in range({self.tasks})]",
                f"    for i in range(1, {self.tasks}):",
                "        tasks[i - 1] >> tasks[i]",
                "",
            ]
        )

    def write_dags(self, dags: Path, records: Path) -> None:
        folder = dags / PARTITION / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        records.mkdir(parents=True, exist_ok=True)
        (folder / f"{DAG_ID}.py").write_text(self.dag_source(records))


@dataclass(frozen=True)
class Execution:
    try_number: int
    started: float
    ended: float | None  # None: the command never got to its end


def read_records(records: Path) -> dict[tuple[str, str], list[Execution]]:
    """(run_id, task_id) -> its executions, in the order they started."""
    out: dict[tuple[str, str], list[Execution]] = {}
    for path in records.iterdir():
        run_id, _, task_id = path.name.partition(".")
        executions: list[Execution] = []
        open_starts: dict[int, list[float]] = {}
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue
            kind, at, try_number = parts[0], float(parts[1]), int(parts[2])
            if kind == "start":
                open_starts.setdefault(try_number, []).append(at)
                executions.append(Execution(try_number, at, None))
            elif kind == "end":
                # The end belongs to the latest start of the same try that has none yet.
                for i in range(len(executions) - 1, -1, -1):
                    e = executions[i]
                    if e.try_number == try_number and e.ended is None:
                        executions[i] = Execution(e.try_number, e.started, at)
                        break
        out[(run_id, task_id)] = executions
    return out


class Api:
    """The REST API as the CLI uses it, with the token standalone saved in its home for its URL
    (read again for every call: each start of standalone makes a new one)."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.home = home

    def request(self, method: str, path: str, body: dict[str, object] | None = None) -> tuple[int, object]:
        token = credentials.token_for(self.url, self.home) or ""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + "/api/v1" + path, data=data, method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def wait_for_dag(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", f"/dags/{DAG_ID}")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"DAG {DAG_ID} not parsed after {timeout} s: {self.request('GET', '/import-errors')}")

    def trigger(self, run_id: str) -> None:
        status, answer = self.request("POST", f"/dags/{DAG_ID}/runs", {"run_id": run_id})
        if status not in (200, 201):
            raise RuntimeError(f"trigger {run_id}: {status} {answer}")
