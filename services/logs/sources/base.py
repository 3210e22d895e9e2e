"""What every log source answers, and how it says it cannot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from spinner.tasklog import LogId, Readiness, Section, SectionTracker

DEFAULT_MAX_LINES = 5000
MAX_PAGE_BYTES = 1 << 20  # of text per answer: a gRPC client takes 4 MiB a message by default

State = tuple[Section, Readiness]  # a SectionTracker's state after the lines before an offset


class SourceError(Exception):
    """A source could not answer; the reader tries the next one."""


class SourceMissing(SourceError):
    """The source has no log for this try (yet, or any more)."""


class SourceUnavailable(SourceError):
    """The source could not be read (down, timing out, refusing, or holding a damaged log)."""


@dataclass(frozen=True)
class Line:
    offset: int
    text: str
    section: Section


@dataclass(frozen=True)
class LogChunk:
    lines: list[Line]
    next_offset: int
    source: str
    complete: bool
    readiness: Readiness = ""
    fallback_reason: str = ""

    def because(self, reason: str) -> LogChunk:
        return replace(self, fallback_reason=reason) if reason else self


class LogSource(Protocol):
    name: str

    async def read(self, key: LogId, offset: int, limit: int, state: State | None = None) -> LogChunk: ...


def window(
    texts: Sequence[str],
    offset: int,
    limit: int,
    *,
    source: str,
    ended: bool,
    tracker: SectionTracker | None = None,
    state: State | None = None,
) -> LogChunk:
    """The chunk at [offset, offset+limit) of a log whose lines are all known (file, pod log, archive).

    Sections and readiness come from scanning the markers from the first line; `ended` says the
    log will not grow, so the chunk that reaches its end is complete.
    """
    tracker = tracker or SectionTracker()
    end = min(len(texts), offset + limit)
    start = 0
    if state is not None:  # the caller knows the state at offset: no need to scan from the first line
        tracker.section, tracker.readiness = state
        start = offset
    lines: list[Line] = []
    size = 0
    for i in range(start, end):
        text = texts[i]
        if i >= offset and lines and size + len(text) > MAX_PAGE_BYTES:
            end = i  # the page is full by bytes: the rest comes with the next read
            break
        section = tracker.feed(text)
        if i >= offset:
            lines.append(Line(i, text, section))
            size += len(text)
    if end < len(texts) and tracker.readiness in ("", "running"):
        for text in texts[end : min(len(texts), end + 1000)]:  # the outcome is near the top: look a little further
            tracker.feed(text)
            if tracker.readiness in ("passed", "failed"):
                break
    next_offset = max(offset, end)
    return LogChunk(
        lines=lines,
        next_offset=next_offset,
        source=source,
        complete=ended and next_offset >= len(texts),
        readiness=tracker.readiness,
    )


def split_lines(text: str, *, ended: bool) -> list[str]:
    """Lines of a log's text. While the log grows, a last line without its newline is left for later."""
    parts = text.split("\n")
    last = parts.pop()  # "" when the text ends with a newline
    if last and ended:
        parts.append(last)
    return [p.removesuffix("\r") for p in parts]
