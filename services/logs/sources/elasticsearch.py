"""A try's log as the runner shipped it to Elasticsearch: one document per line, ordered by offset.

The fallback for both a running try (pod unreadable) and an ended one (S3 unreadable). A
document with section "end", one past the last line, says the log is whole. While the log
grows, only lines up to the first gap are returned (a batch may still be on its way); once the
end is there, a gap is lines Elasticsearch never got, and is skipped.
"""

from __future__ import annotations

import re
from typing import Any

from services.logs.sources.base import MAX_PAGE_BYTES, Line, LogChunk, SourceMissing, SourceUnavailable, State
from spinner.tasklog import LogId, SectionTracker


def index_wildcard(pattern: str) -> str:
    """`spinner-logs-%Y.%m.%d` -> `spinner-logs-*`: every day's index."""
    return re.sub(r"(%.)+", "*", pattern)


class ElasticsearchSource:
    name = "elasticsearch"

    def __init__(self, hosts: list[str], index_pattern: str, *, request_timeout: float = 10.0) -> None:
        from elasticsearch import AsyncElasticsearch

        self._client = AsyncElasticsearch(hosts=hosts, request_timeout=request_timeout, max_retries=0)
        self._index = index_wildcard(index_pattern)

        self._pattern = index_pattern

    async def prepare(self) -> None:
        """Maps the log id fields as keywords in every index the pattern makes (idempotent): the
        reader's exact-match queries need it. Runners' lines shipped before it are not found."""
        from spinner.logship import install_index_template

        await install_index_template(self._client, self._pattern)

    async def aclose(self) -> None:
        await self._client.close()

    async def read(self, key: LogId, offset: int, limit: int, state: State | None = None) -> LogChunk:
        from elastic_transport import TransportError
        from elasticsearch import ApiError

        query: dict[str, Any] = {
            "bool": {
                "filter": [
                    {"term": {"dag_id": key.dag_id}},
                    {"term": {"run_id": key.run_id}},
                    {"term": {"task_id": key.task_id}},
                    {"term": {"try_number": key.try_number}},
                    {"range": {"offset": {"gte": offset}}},
                ]
            }
        }
        # A mapped task's instance has documents with its map_index; an unmapped try's have none (as always).
        if key.map_index >= 0:
            query["bool"]["filter"].append({"term": {"map_index": key.map_index}})
        else:
            query["bool"]["must_not"] = [{"exists": {"field": "map_index"}}]
        try:
            reply: Any = await self._client.search(
                index=self._index,
                query=query,
                sort=[{"offset": {"order": "asc", "unmapped_type": "long"}}],
                size=limit + 1,
                ignore_unavailable=True,
                source_includes=["offset", "section", "message"],
            )
        except ApiError as e:
            raise SourceUnavailable(f"elasticsearch: search failed ({e.status_code} {e.message})") from None
        except TransportError as e:
            raise SourceUnavailable(f"elasticsearch: unreachable ({type(e).__name__})") from None
        hits = [h["_source"] for h in reply["hits"]["hits"]]
        if not hits and offset == 0:
            raise SourceMissing("elasticsearch: no lines for this try")
        end_at = next((i for i, h in enumerate(hits) if h.get("section") == "end"), None)
        line_hits = hits[:end_at] if end_at is not None else hits
        taken = line_hits[:limit]
        tracker = SectionTracker() if offset == 0 else None
        lines: list[Line] = []
        expected = offset
        size = 0
        for hit in taken:
            at = int(hit["offset"])
            if at != expected and end_at is None:
                break  # a gap while the log grows: the missing lines may still arrive
            text = str(hit.get("message", ""))
            if lines and size + len(text) > MAX_PAGE_BYTES:
                break  # the page is full by bytes
            size += len(text)
            if tracker is not None:
                tracker.feed(text)
            section = hit.get("section", "")
            lines.append(Line(at, text, section if section in ("readiness", "task") else ""))
            expected = at + 1
        complete = end_at is not None and len(lines) == len(line_hits)
        if complete and end_at is not None:
            expected = max(expected, int(hits[end_at]["offset"]))
        return LogChunk(
            lines=lines,
            next_offset=expected,
            source=self.name,
            complete=complete,
            readiness=tracker.readiness if tracker is not None else "",
        )
