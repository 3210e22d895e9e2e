"""The runner's own completion marker (spinner/runner/completion.py): written last, except for a sensor that reschedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from spinner.logpaths import LOG_PATH_ENV, complete_marker
from spinner.runner.completion import LogEnd


@pytest.mark.parametrize(("answered", "marked"), [(None, True), ("success", True), ("failed", True),
                                                   ("up_for_retry", True), ("up_for_reschedule", False)])  # fmt: skip
def test_the_marker_is_written_unless_the_next_poke_goes_on_in_the_log(
    tmp_path: Path, answered: str | None, marked: bool
) -> None:
    log = tmp_path / "attempt=1.log"
    log.write_text("last line\n")
    end = LogEnd.from_environ({LOG_PATH_ENV: str(log)})
    if answered is not None:  # None: the Finish was never answered (the executor stayed away)
        end.answered(answered)
    end.mark()
    assert complete_marker(log).exists() is marked
    if marked:
        assert complete_marker(log).read_bytes() == b""
        end.mark()  # twice is harmless, as the executor's own marker after it
        assert complete_marker(log).exists() and log.read_text() == "last line\n"


def test_no_log_named_no_marker_and_a_vanished_folder_is_no_error(tmp_path: Path) -> None:
    LogEnd.from_environ({}).mark()  # a pod: its log is archived by LogStream, with its own marker
    assert list(tmp_path.iterdir()) == []
    LogEnd(tmp_path / "gone" / "attempt=1.log").mark()
    assert not (tmp_path / "gone").exists()
