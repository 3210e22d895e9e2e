"""BashOperator: runs a command with bash, streaming its output into the task's log.

`env`, `append_env`, `cwd` and `skip_on_exit_code` behave as in Airflow 3: with `env` the command
gets only those variables unless `append_env=True` adds them to the task's own environment; the
command runs in `cwd`, or in a fresh temporary directory that is removed afterwards; an exit code in
`skip_on_exit_code` (99 unless told otherwise, None: never) ends the task as skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Container, Iterable
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError, SkipTask
from spinner.sdk.operators.base import BaseOperator

_DEFAULT: Any = object()


class BashOperator(BaseOperator):
    """Runs a command with bash, streaming its output. Exit code 99 (or `skip_on_exit_code`) skips the task."""

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")

    def __init__(
        self,
        task_id: str,
        bash_command: str,
        env: dict[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        skip_on_exit_code: int | Container[int] | None = 99,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        where = f"DAG '{self.dag.dag_id if self.dag else '?'}', task '{task_id}'"
        self.bash_command = bash_command
        if env is not None and (not isinstance(env, dict) or not all(isinstance(k, str) for k in env)):
            raise DagDefinitionError(f"{where}: env must be a dict of variable names to values")
        self.env = env
        self.append_env = bool(append_env)
        self.cwd = cwd
        self.skip_on_exit_code = _exit_codes(skip_on_exit_code, where)

    def environment(self, context: dict[str, Any]) -> dict[str, str]:
        """Airflow's rule: no `env` inherits the task's environment; `env` replaces it unless `append_env`."""
        if self.env is None:
            env = dict(os.environ)
        elif self.append_env:
            env = {**os.environ, **{k: str(v) for k, v in self.env.items()}}
        else:
            env = {k: str(v) for k, v in self.env.items()}
        env.update(context_variables(context))
        return env

    def execute(self, context: dict[str, Any]) -> Any:
        env = self.environment(context)
        if self.cwd is not None:
            if not os.path.exists(self.cwd):
                raise FileNotFoundError(f"Can not find the cwd: {self.cwd}")
            if not os.path.isdir(self.cwd):
                raise NotADirectoryError(f"The cwd {self.cwd} must be a directory")
            return self._run(env, self.cwd)
        with tempfile.TemporaryDirectory(prefix="spinner-bash-") as tmp:
            return self._run(env, tmp)

    def _run(self, env: dict[str, str], cwd: str) -> str:
        proc = subprocess.Popen(
            ["bash", "-c", self.bash_command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            text=True,
            errors="replace",
        )
        last = ""
        assert proc.stdout is not None
        try:
            with proc.stdout:
                for line in proc.stdout:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                    last = line.rstrip("\n")
            rc = proc.wait()
        except BaseException:  # timeout or kill of the task: take the command down with it
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        if rc in self.skip_on_exit_code:
            raise SkipTask(f"Bash command returned exit code {rc}. Skipping.")
        if rc != 0:
            raise RuntimeError(f"Bash command failed. The command returned a non-zero exit code {rc}.")
        return last


def _exit_codes(value: Any, where: str) -> frozenset[int]:
    if value is None:
        return frozenset()
    if isinstance(value, int) and not isinstance(value, bool):
        return frozenset({value})
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        codes = list(value)
        if all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
            return frozenset(codes)
    raise DagDefinitionError(f"{where}: skip_on_exit_code must be an exit code, a list of them or None, not {value!r}")


def context_variables(context: dict[str, Any]) -> dict[str, str]:
    """The run's identity as environment variables, under Airflow's names (AIRFLOW_CTX_*)."""
    ti = context.get("ti")
    dag = context.get("dag")
    out = {
        "AIRFLOW_CTX_DAG_ID": getattr(dag, "dag_id", ""),
        "AIRFLOW_CTX_TASK_ID": getattr(ti, "task_id", ""),
        "AIRFLOW_CTX_RUN_ID": str(context.get("run_id", "")),
        "AIRFLOW_CTX_TRY_NUMBER": str(context.get("try_number", "")),
        "AIRFLOW_CTX_DAG_OWNER": str(getattr(dag, "owner", "") or ""),
    }
    logical_date = context.get("logical_date")
    if logical_date is not None:
        out["AIRFLOW_CTX_LOGICAL_DATE"] = logical_date.isoformat()
    return {k: v for k, v in out.items() if v}
