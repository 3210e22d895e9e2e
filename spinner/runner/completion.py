"""The runner marks its own local log complete, as its very last act.

The local backend names the file it handed the runner as stdout (`SPINNER_LOG_PATH`,
spinner.logpaths.LOG_PATH_ENV); no other backend sets it (a pod's log is archived to S3 by
LogStream, which writes its own marker there). Once the try's Finish was answered and LogStream
has flushed and put stdout back (so the task's and its child processes' output is in the file),
`LogEnd.mark()` touches `<log>.complete`, the same empty file the executor writes when it sees
the process end. The runner does it itself because the executor that launched it may be gone (a
kill -9 and restart): the runner then reports to the new executor, which never saw it start and
so never sees it end.

A runner kept as the DAG user (spinner/runner/keeper.py) may not create files in the log folder:
it writes a byte to its keeper's pipe instead (`SPINNER_LOG_END_FD`), and the keeper, root, touches
the marker once the runner is gone.

A sensor's poke that reschedules leaves the marker alone: the next poke's process appends to the
same log (docs/adr/0006-sensor-reschedule.md). So does a runner refused at Start (a second runner
of a try that already runs): the log is the first runner's to complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from spinner.logpaths import LOG_PATH_ENV, complete_marker
from spinner.runner.keeper import LOG_END_FD_ENV, MARK

RESCHEDULED = "up_for_reschedule"  # the state Finish answers when the try goes on in the next poke


class LogEnd:
    def __init__(self, log_path: Path | None, keeper_fd: int | None = None) -> None:
        self._path = log_path
        self._keeper_fd = keeper_fd
        self._continues = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> LogEnd:
        value = environ.get(LOG_PATH_ENV, "")
        fd = environ.get(LOG_END_FD_ENV, "")
        return cls(Path(value) if value else None, int(fd) if fd.isdigit() else None)

    def answered(self, state: str) -> None:
        """The state Finish answered: a reschedule means the log goes on in the next poke's process."""
        self._continues = state == RESCHEDULED

    def not_ours(self) -> None:
        """The executor refused this runner's Start: the log, if any, is another runner's to complete."""
        self._continues = True

    def mark(self) -> None:
        """Touches the marker, unless the log goes on or no file was named. Never raises: it is the last act."""
        if self._path is None or self._continues:
            return
        if self._keeper_fd is not None:  # the keeper touches it, once this process is gone
            with contextlib.suppress(OSError):
                os.write(self._keeper_fd, MARK)
            return
        with contextlib.suppress(OSError):  # the folder is gone: the executor, if it sees the end, says so
            complete_marker(self._path).touch()
