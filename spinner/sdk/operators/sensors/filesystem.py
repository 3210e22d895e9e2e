"""FileSensor: waits until a file (or any file matching a glob) exists."""

from __future__ import annotations

import glob
import os
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.operators.sensors._log import say
from spinner.sdk.operators.sensors.base import BaseSensorOperator


class FileSensor(BaseSensorOperator):
    """Succeeds once `filepath` exists: a path, or a glob (`*`, `?`, `[...]`, `**` with recursive=True).
    A directory counts when it holds at least one entry. `filepath` is templated."""

    template_fields = ("filepath",)

    def __init__(self, task_id: str, filepath: str, recursive: bool = False, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        if not isinstance(filepath, str) or not filepath:
            name = self.dag.dag_id if self.dag else "?"
            raise DagDefinitionError(f"DAG '{name}', task '{task_id}': filepath must be a non-empty string")
        self.filepath = filepath
        self.recursive = bool(recursive)

    def poke(self, context: dict[str, Any]) -> bool:
        for path in sorted(glob.glob(self.filepath, recursive=self.recursive)):
            if os.path.isfile(path):
                say(f"found {path}")
                return True
            if os.path.isdir(path):
                with os.scandir(path) as entries:
                    if any(entries):
                        say(f"found the non-empty folder {path}")
                        return True
        return False
