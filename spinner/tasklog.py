"""A task try's log, as every part of Spinner sees it: the runner writes it, the logs service reads it.

Lines are numbered from 0 in the order the runner wrote them; every store (the pod's stdout,
the local file, Elasticsearch documents, the S3 archive) keeps that numbering, so a reader moves
between stores by offset without missing or repeating a line.

The runner marks two sections with lines of their own: `::spinner-section::readiness` (its
checks before the task) and `::spinner-section::task`, and ends the readiness section with
`::spinner-readiness::passed` or `::spinner-readiness::failed`.

When a try ends, its whole log goes to S3 at `<prefix>/<dag_id>/<run_id>/<task_id>/<try>.log`
(an instance of a mapped task: `<task_id>/map_index=<i>/<try>.log`), then a marker object
`<that key>.complete` (JSON: lines, bytes, sha256) is written: a log without its marker is not
complete, and one that does not match its marker is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Literal

from spinner.mapping import NO_MAP_INDEX

SECTION_START = "::spinner-section::"
READINESS_PASSED = "::spinner-readiness::passed"
READINESS_FAILED = "::spinner-readiness::failed"

Section = Literal["", "readiness", "task"]
Readiness = Literal["", "running", "passed", "failed"]

_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")


@dataclass(frozen=True)
class LogId:
    """The task try a log belongs to."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int
    # Which instance of a mapped task; -1 for an unmapped task (docs/adr/0007-dynamic-task-mapping.md).
    map_index: int = NO_MAP_INDEX

    def describe(self) -> str:
        """How messages name the try: `dag.task run r try n`, with `[i]` after the task for a mapped instance."""
        instance = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{instance} run {self.run_id} try {self.try_number}"


def is_marker(line: str) -> bool:
    """A line the runner wrote for readers (a section start, the readiness outcome), not for people."""
    return line.startswith(SECTION_START) or line in (READINESS_PASSED, READINESS_FAILED)


def level_of(line: str) -> str:
    """The log level a line names near its start (Python logging's format and most others), else INFO."""
    if line.startswith(("Traceback (most recent call last)", "  File ")):
        return "ERROR"
    match = _LEVEL.search(line, 0, 80)
    if match is None:
        return "INFO"
    level = match.group(1)
    return {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)


class SectionTracker:
    """Follows the markers line by line: which section each line is in, and how readiness went."""

    def __init__(self) -> None:
        self.section: Section = ""
        self.readiness: Readiness = ""

    def feed(self, line: str) -> Section:
        """The section of this line (a section's start marker belongs to the section it starts)."""
        if line.startswith(SECTION_START):
            name = line[len(SECTION_START) :].strip()
            if name == "readiness":
                self.section, self.readiness = "readiness", "running"
            elif name == "task":
                self.section = "task"
        elif line == READINESS_PASSED:
            self.readiness = "passed"
        elif line == READINESS_FAILED:
            self.readiness = "failed"
        return self.section


def _part(text: str) -> str:
    return text.replace("%", "%25").replace("/", "%2F")


def archive_key(
    prefix: str, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = NO_MAP_INDEX
) -> str:
    """`<prefix>/<dag_id>/<run_id>/<task_id>/<try>.log` (a `/` inside an id is written %2F); a mapped
    task's instance i: `<prefix>/<dag_id>/<run_id>/<task_id>/map_index=<i>/<try>.log`."""
    head = prefix.strip("/")
    instance = f"map_index={int(map_index)}/" if map_index >= 0 else ""
    rest = f"{_part(dag_id)}/{_part(run_id)}/{_part(task_id)}/{instance}{int(try_number)}.log"
    return f"{head}/{rest}" if head else rest


def marker_key(log_key: str) -> str:
    return log_key + ".complete"


@dataclass(frozen=True)
class ArchiveMarker:
    lines: int
    size: int  # bytes
    sha256: str

    @classmethod
    def of(cls, content: bytes) -> ArchiveMarker:
        return cls(
            lines=content.count(b"\n") + (0 if not content or content.endswith(b"\n") else 1),
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )

    def to_json(self) -> bytes:
        return json.dumps({"lines": self.lines, "bytes": self.size, "sha256": self.sha256}).encode()

    @classmethod
    def parse(cls, data: bytes) -> ArchiveMarker:
        """Raises ValueError for a marker that is not one."""
        try:
            raw = json.loads(data)
            marker = cls(lines=int(raw["lines"]), size=int(raw["bytes"]), sha256=str(raw["sha256"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"not a log marker: {e}") from None
        if marker.lines < 0 or marker.size < 0 or len(marker.sha256) != 64:
            raise ValueError("not a log marker: bad counts or hash")
        return marker

    def check(self, content: bytes) -> None:
        """Raises ValueError when the archived log is not the one the marker describes."""
        if len(content) != self.size or hashlib.sha256(content).hexdigest() != self.sha256:
            raise ValueError(
                f"archived log is {len(content)} bytes with another hash; its marker says {self.size} bytes"
            )
