"""The one small interface every executor backend implements."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class BackendClosed(Exception):
    """The backend is stopping and takes no new tries."""


class LaunchRefused(ValueError):
    """The try asks for something the platform does not allow (its executor_config); it can never start."""


@dataclass(frozen=True)
class TryKey:
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    # The process of the try: 0 for its first, n after its n-th sensor reschedule (docs/adr/0006-sensor-reschedule.md).
    reschedule: int = 0
    # Which instance of a mapped task; -1 for an unmapped task (docs/adr/0007-dynamic-task-mapping.md).
    map_index: int = -1

    def describe(self) -> str:
        """How logs and messages name the try: `dag.task (run) try n`; `dag.task[i] (run) try n` for a mapped one."""
        instance = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{instance} ({self.run_id}) try {self.try_number}"


@dataclass(frozen=True)
class LaunchSpec:
    key: TryKey
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    partition: str = ""
    executor_config: dict[str, Any] = field(default_factory=dict)


# The exit code of a process that was not this executor's child (adopted after a restart): unknown.
EXIT_UNKNOWN = -(1 << 16)


class ExitCallback(Protocol):
    """(try, exit code, reason, pid): reason says why the platform ended it (OOMKilled, evicted...),
    empty for a plain exit; pid names the local process that ended (None for a pod)."""

    def __call__(self, key: TryKey, exit_code: int, reason: str, pid: int | None = None, /) -> Awaitable[None]: ...


@dataclass(frozen=True)
class PreviousTry:
    """A try the database says this executor (by name) runs: what a restarted executor may adopt."""

    key: TryKey
    hostname: str = ""
    pid: int | None = None
    start_date: dt.datetime | None = None


class ExecutorBackend(abc.ABC):
    """Starts a try's runner and reports its end through `on_exit(key, exit_code)`."""

    name: str = "base"
    noun: str = "process"  # what a try runs as, in messages: "pod" for Kubernetes
    # True when start() finds the tries it already runs after a restart, so any other try this executor
    # started is lost (it ends at once, with the reason, instead of at the heartbeat timeout).
    adopts: bool = False

    def __init__(self, on_exit: ExitCallback) -> None:
        self._on_exit = on_exit

    async def start(self, previous: Sequence[PreviousTry] = ()) -> list[TryKey]:
        """Called once before the first launch: finds tries this backend already runs (adoption), among
        them those of `previous` (the running tries of an executor of the same name before it)."""
        return []

    def adopt_started(self, key: TryKey, hostname: str, pid: int) -> bool:
        """A runner this backend does not know started (launched by an executor before a restart): watch
        it from now on. True when it is watched now; backends that cannot watch it say False."""
        return False

    @abc.abstractmethod
    async def launch(self, spec: LaunchSpec) -> bool:
        """Starts the try. False when this backend already runs it (launching twice is harmless)."""

    @abc.abstractmethod
    def running(self) -> list[TryKey]:
        """Tries this backend is running now."""

    def is_running(self, key: TryKey) -> bool:
        """Whether this backend runs the try now (backends override it with a lookup)."""
        return key in self.running()

    @abc.abstractmethod
    async def terminate(self, key: TryKey) -> None:
        """Stops a try (a person marked it, or it was cleared)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stops watching. What happens to running tries is the backend's to say."""
