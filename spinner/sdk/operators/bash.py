"""BashOperator: runs a command with bash, streaming its output into the task's log."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from spinner.sdk.exceptions import SkipTask
from spinner.sdk.operators.base import BaseOperator


class BashOperator(BaseOperator):
    """Runs a command with bash, streaming its output. Exit code 99 skips the task."""

    template_fields = ("bash_command", "env")
    template_ext = (".sh", ".bash")
    skip_on_exit_code = 99

    def __init__(
        self,
        task_id: str,
        bash_command: str,
        env: dict[str, str] | None = None,
        append_env: bool = True,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.cwd = cwd

    def execute(self, context: dict[str, Any]) -> Any:
        env = {**os.environ, **(self.env or {})} if self.append_env or self.env is None else dict(self.env)
        proc = subprocess.Popen(
            ["bash", "-c", self.bash_command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
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
        if rc == self.skip_on_exit_code:
            raise SkipTask(f"Bash command returned exit code {rc}: skipping")
        if rc != 0:
            raise RuntimeError(f"Bash command failed. The command returned a non-zero exit code {rc}.")
        return last
