"""A fake Elasticsearch 9 server for the official async client (`elasticsearch.AsyncElasticsearch`).

`FakeElasticsearch` answers plain HTTP on 127.0.0.1 from its own thread (see `_server.py`); one
node, one shard per index, everything in memory.

Reproduced, as Elasticsearch 9 answers the client:
- Every answer carries `X-Elastic-Product: Elasticsearch` (the client refuses a 2xx without it)
  and, when the request asks for `compatible-with=8|9`, the content type
  `application/vnd.elasticsearch+json;compatible-with=N` (else `application/json`); another
  compatibility version is a 400 `media_type_header_exception`.
- `GET /` (info), `HEAD /` (ping), `GET /_cluster/health`.
- `_bulk` (`/_bulk`, `/{index}/_bulk`): NDJSON `index` / `create` / `update` (`doc`, `doc_as_upsert`)
  / `delete` with per-item results (`result`, `_version`, `_seq_no`, `status`, `error`), the `errors`
  flag, a 409 `version_conflict_engine_exception` for `create` of an existing id, generated ids,
  a 400 for a body that does not end in a newline or a malformed action line, and `refresh`.
- Indices created implicitly on first write, or with `PUT /{index}` (mappings); composable index
  templates (`PUT /_index_template/{name}`: patterns, priority, mappings, `data_stream`) and the
  built-in `logs-*-*` data stream template: there only `create` is allowed, `@timestamp` is
  required, strings map to keyword, and hits come from the `.ds-...` backing index.
- Dynamic mapping: strings become `text` with a `.keyword` sub-field (or `date` when they look like
  one), integers `long`, floats `float`, booleans `boolean`, objects by their fields; a value that
  does not fit its mapped type is a per-item 400 `document_parsing_exception`.
- `_search` (`/_search`, `/{index}/_search`, GET or POST) with comma-separated index names,
  wildcards and `-` exclusions (`logs-*`), a missing concrete index a 404 `index_not_found_exception`
  (unless `ignore_unavailable`); queries `bool` (must / filter / should / must_not,
  minimum_should_match), `term`, `terms`, `range` (numbers, dates with `now-1d`, keywords),
  `match` / `match_phrase` (crude tokenizer on text), `prefix`, `exists`, `ids`, `match_all`;
  `sort` (field / {field: order} / {field: {order, unmapped_type}}, `_doc`), sorting on a text
  field or an unmapped one a 400 as in Elasticsearch; `size`, `from`, the 10,000 result window,
  `search_after`, `_source` filtering, `hits.total` with `track_total_hits`; `_count`.
- Near-real-time search: documents are searchable after a refresh (`_refresh`, `refresh=true` or
  `wait_for` on a write, or the periodic `refresh_interval`, emulated lazily at search time).
- Single documents: `PUT|POST /{index}/_doc/{id}`, `POST /{index}/_doc`, `PUT /{index}/_create/{id}`,
  `GET /{index}/_doc/{id}`; `HEAD|DELETE /{index}`.
- Faults as Python hooks: `stop()` / `start()` (connection refused, same port), `unavailable(status)`
  (503 cluster block, 429 rejected execution, or any status), `slow(seconds)`,
  `reject_bulk_items(n)` (the next n bulk items fail with 429), `without_product_header()`,
  `healthy()` to undo them.

Left out: relevance scoring (every hit scores 1.0), analyzers beyond a lowercase word split,
aggregations, highlighting, scroll and point-in-time, `q=` query strings, aliases, replicas and
shards (always 1 primary, `_shards.total` 2), versioning options (`if_seq_no`, external versions),
ingest pipelines, security (no authentication), `dynamic: strict`, nested queries, routing,
date formats other than ISO 8601 and epoch millis, index settings other than mappings, and the
response shaping parameters (`filter_path`, `format`, `pretty`): answers are always whole JSON.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from aiohttp import web

from tests.fakes._es_query import (
    EsError,
    Fields,
    check_value,
    compare_keys,
    compile_query,
    dynamic_type,
    flatten_properties,
    parse_sort,
    sort_key,
    sorted_hits,
    source_values,
)
from tests.fakes._server import BackgroundServer

VERSION = "9.1.5"
_COMPAT = re.compile(r"compatible-with=(\d+)")
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')
_SHARDS = {"total": 2, "successful": 1, "failed": 0}
_UNAVAILABLE = {
    503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"),
    429: ("es_rejected_execution_exception", "rejected execution of coordinating operation"),
}


@dataclass
class _Doc:
    source: dict[str, Any]
    version: int
    seq_no: int
    fields: Fields | None = None  # looked-up values, dropped when the index's mappings grow


@dataclass
class _Index:
    name: str
    data_stream: str | None = None
    mappings: dict[str, str] = field(default_factory=dict)
    docs: dict[str, _Doc] = field(default_factory=dict)
    visible: dict[str, _Doc] = field(default_factory=dict)
    seq_no: int = -1
    refreshed_at: float = field(default_factory=time.monotonic)
    dirty: bool = False
    uuid: str = field(default_factory=lambda: base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22])

    @property
    def public_name(self) -> str:
        return self.data_stream or self.name

    def refresh(self) -> None:
        if self.dirty:
            self.visible = dict(self.docs)
            self.dirty = False
        self.refreshed_at = time.monotonic()


@dataclass
class _Template:
    name: str
    patterns: list[str]
    priority: int
    mappings: dict[str, Any]
    data_stream: bool


class FakeElasticsearch:
    """A fake Elasticsearch node; use as a context manager (or `start()` / `close()`)."""

    def __init__(self, *, refresh_interval: float | None = 1.0, logs_data_streams: bool = True, port: int = 0) -> None:
        """`refresh_interval`: seconds before writes become searchable without an explicit refresh (None: never).
        `logs_data_streams`: the built-in `logs-*-*` data stream template of a default install (Elasticsearch's
        `stack.templates.enabled`)."""
        self.refresh_interval = refresh_interval
        self._indices: dict[str, _Index] = {}
        self._templates: dict[str, _Template] = {}
        if logs_data_streams:
            self._templates["logs"] = _Template("logs", ["logs-*-*"], 100, {}, True)
        self._fault_status: int | None = None
        self._delay = 0.0
        self._reject_items = 0
        self._product_header = True
        self.requests: list[tuple[str, str]] = []  # (method, path_qs), for assertions
        self._server = BackgroundServer(self._make_app, "fake-elasticsearch")
        self._server.port = port

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> FakeElasticsearch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or start again) serving on the same port; the data is kept."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving: connections are refused until `start()`."""
        self._server.stop()

    def close(self) -> None:
        self._server.close()

    # --- test hooks ----------------------------------------------------------------------------

    def unavailable(self, status: int = 503) -> None:
        """Answer every request with this error status (503 no master, 429 rejected, or any other)."""
        self._server.call(lambda: setattr(self, "_fault_status", status))

    def slow(self, seconds: float) -> None:
        """Wait this long before answering each request."""
        self._server.call(lambda: setattr(self, "_delay", seconds))

    def reject_bulk_items(self, count: int) -> None:
        """Fail the next `count` bulk items with 429 es_rejected_execution_exception (the others succeed)."""
        self._server.call(lambda: setattr(self, "_reject_items", count))

    def without_product_header(self) -> None:
        """Answer like a server that is not Elasticsearch (no X-Elastic-Product header)."""
        self._server.call(lambda: setattr(self, "_product_header", False))

    def healthy(self) -> None:
        """Undo `unavailable`, `slow`, `reject_bulk_items` and `without_product_header`."""

        def reset() -> None:
            self._fault_status, self._delay, self._reject_items, self._product_header = None, 0.0, 0, True

        self._server.call(reset)

    def refresh(self) -> None:
        def refresh_all() -> None:
            for index in self._indices.values():
                index.refresh()

        self._server.call(refresh_all)

    def indices(self) -> list[str]:
        """Every concrete index name (data streams by their backing index)."""
        return self._server.call(lambda: sorted(self._indices))

    def documents(self, pattern: str = "*") -> list[dict[str, Any]]:
        """Every document's source in the matching indices, refreshed or not, in write order per index."""

        def collect() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for index in self._resolve(pattern, ignore_unavailable=True):
                out.extend(copy.deepcopy(d.source) for d in sorted(index.docs.values(), key=lambda d: d.seq_no))
            return out

        return self._server.call(collect)

    # --- indices -------------------------------------------------------------------------------

    def _resolve(self, expression: str, *, ignore_unavailable: bool = False) -> list[_Index]:
        included: dict[str, _Index] = {}
        for part in [p.strip() for p in expression.split(",") if p.strip()] or ["_all"]:
            if part in ("_all", "*"):
                part = "*"
            exclude = part.startswith("-") and bool(included)
            name = part[1:] if exclude else part
            matched = [
                i
                for i in self._indices.values()
                if (fnmatchcase(i.public_name, name) and not (name.startswith("*") and i.public_name.startswith(".")))
                or i.name == name
            ]
            if not matched and "*" not in name and not exclude and not ignore_unavailable:
                raise EsError(
                    404,
                    "index_not_found_exception",
                    f"no such index [{name}]",
                    **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name},
                )
            for index in matched:
                if exclude:
                    included.pop(index.name, None)
                else:
                    included[index.name] = index
        return list(included.values())

    def _template_for(self, name: str) -> _Template | None:
        matching = [t for t in self._templates.values() if any(fnmatchcase(name, p) for p in t.patterns)]
        return max(matching, key=lambda t: t.priority, default=None)

    def _index_for_write(self, name: str) -> _Index:
        for index in self._indices.values():
            if index.name == name or index.data_stream == name:
                return index
        _check_index_name(name)
        template = self._template_for(name)
        mappings = flatten_properties((template.mappings.get("properties") or {}) if template else {})
        if template is not None and template.data_stream:
            day = datetime.now(UTC).strftime("%Y.%m.%d")
            mappings.setdefault("@timestamp", "date")
            index = _Index(f".ds-{name}-{day}-000001", data_stream=name, mappings=mappings)
        else:
            index = _Index(name, mappings=mappings)
        self._indices[index.name] = index
        return index

    def _write(self, index: _Index, op: str, id_: str | None, source: Any) -> tuple[int, dict[str, Any]]:
        """Apply one write; return (status, the item's result body)."""
        if not isinstance(source, dict):
            raise EsError(400, "document_parsing_exception", "[1:1] failed to parse: expected an object")
        if index.data_stream:
            if op != "create":
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    "only write ops with an op_type of create are allowed in data streams",
                )
            if "@timestamp" not in source:
                raise EsError(
                    400,
                    "document_parsing_exception",
                    "[1:2] failed to parse: data stream timestamp field [@timestamp] is missing",
                )
        id_ = id_ or base64.urlsafe_b64encode(uuid.uuid4().bytes[:15]).decode()
        existing = index.docs.get(id_)
        if op == "create" and existing is not None:
            raise EsError(
                409,
                "version_conflict_engine_exception",
                f"[{id_}]: version conflict, document already exists (current version [{existing.version}])",
                index_uuid=index.uuid,
                shard="0",
                index=index.name,
            )
        self._map(index, id_, source)
        index.seq_no += 1
        version = existing.version + 1 if existing else 1
        index.docs[id_] = _Doc(copy.deepcopy(source), version, index.seq_no)
        index.dirty = True
        body = {
            "_index": index.name,
            "_id": id_,
            "_version": version,
            "result": "updated" if existing else "created",
            "_shards": _SHARDS,
            "_seq_no": index.seq_no,
            "_primary_term": 1,
        }
        return (200 if existing else 201), body

    def _map(self, index: _Index, id_: str, source: Mapping[str, Any]) -> None:
        """Check the document against the mappings, adding dynamic fields; refuse values that do not fit."""
        new: dict[str, str] = {}
        for key, value in source.items():
            for path, ftype in dynamic_type(value, key, strings_as_keyword=index.data_stream is not None).items():
                if path not in index.mappings:
                    new[path] = ftype
        candidate = {**new, **index.mappings}
        for path, ftype in candidate.items():
            if ftype in ("object", "nested") or path.endswith(".keyword"):
                continue
            for value in source_values(source, path, candidate):
                try:
                    check_value(ftype, value)
                except (ValueError, TypeError) as e:
                    raise EsError(
                        400,
                        "document_parsing_exception",
                        f"[1:2] failed to parse field [{path}] of type [{ftype}] in document with id '{id_}'. "
                        f"Preview of field's value: '{value}'",
                    ) from e
        if new:
            index.mappings.update(new)
            for doc in index.docs.values():
                doc.fields = None

    # --- HTTP ----------------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=256 * 2**20)
        r = app.router
        r.add_route("GET", "/", self._info)
        r.add_route("HEAD", "/", self._ping)
        r.add_get("/_cluster/health", self._health)
        r.add_route("*", "/_bulk", self._bulk)
        r.add_route("*", "/_search", self._search)
        r.add_route("*", "/_refresh", self._refresh)
        r.add_route("*", "/_count", self._count)
        r.add_put("/_index_template/{name}", self._put_template)
        r.add_route("*", "/{index}/_bulk", self._bulk)
        r.add_route("*", "/{index}/_search", self._search)
        r.add_route("*", "/{index}/_refresh", self._refresh)
        r.add_route("*", "/{index}/_count", self._count)
        r.add_post("/{index}/_doc", self._put_doc)
        r.add_route("*", "/{index}/_doc/{id}", self._doc)
        r.add_put("/{index}/_create/{id}", self._put_doc)
        r.add_post("/{index}/_create/{id}", self._put_doc)
        r.add_route("*", "/{index}", self._index)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        compat = None
        if self._delay:
            await asyncio.sleep(self._delay)
        try:
            for header in ("Accept", "Content-Type"):
                if m := _COMPAT.search(request.headers.get(header, "")):
                    if m.group(1) not in ("8", "9"):
                        raise EsError(
                            400,
                            "media_type_header_exception",
                            "Invalid media-type value on headers [Accept, Content-Type]",
                            caused_by={
                                "type": "status_exception",
                                "reason": f"{header} version must be either version 9 or 8, but found {m.group(1)}. "
                                f"{header}={request.headers[header]}",
                            },
                        )
                    compat = m.group(1)
            if self._fault_status is not None:
                type_, reason = _UNAVAILABLE.get(self._fault_status, ("status_exception", "injected failure"))
                raise EsError(self._fault_status, type_, reason)
            if request.match_info.http_exception is not None:
                raise EsError(
                    405 if request.match_info.http_exception.status == 405 else 400,
                    "illegal_argument_exception"
                    if request.match_info.http_exception.status != 405
                    else "method_not_allowed",
                    f"request [{request.path}] contains unrecognized or unsupported path or method [{request.method}]",
                )
            response: web.StreamResponse = await handler(request)
        except EsError as e:
            response = web.json_response(e.body(), status=e.status)
        if compat and response.content_type == "application/json":
            response.headers["Content-Type"] = f"application/vnd.elasticsearch+json;compatible-with={compat}"
        if self._product_header:
            response.headers["X-Elastic-Product"] = "Elasticsearch"
        return response

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise EsError(400, "x_content_parse_exception", f"[1:1] failed to parse the request body: {e}") from e
        if not isinstance(body, dict):
            raise EsError(400, "parse_exception", "request body must be an object")
        return body

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": "fake-es-0",
                "cluster_name": "fake",
                "cluster_uuid": "fake-cluster-uuid-000000",
                "version": {
                    "number": VERSION,
                    "build_flavor": "default",
                    "build_type": "docker",
                    "build_hash": "fake",
                    "build_date": "2026-01-01T00:00:00.000Z",
                    "build_snapshot": False,
                    "lucene_version": "10.2.2",
                    "minimum_wire_compatibility_version": "8.19.0",
                    "minimum_index_compatibility_version": "8.0.0",
                },
                "tagline": "You Know, for Search",
            }
        )

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(status=200, content_type="application/json")

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "cluster_name": "fake",
                "status": "yellow" if self._indices else "green",
                "number_of_nodes": 1,
                "number_of_data_nodes": 1,
                "active_primary_shards": len(self._indices),
                "timed_out": False,
            }
        )

    async def _put_template(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        patterns = body.get("index_patterns")
        if not patterns:
            raise EsError(
                400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;"
            )
        patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        template = body.get("template") or {}
        name = request.match_info["name"]
        self._templates[name] = _Template(
            name, patterns, int(body.get("priority", 0)), template.get("mappings") or {}, "data_stream" in body
        )
        return web.json_response({"acknowledged": True})

    async def _index(self, request: web.Request) -> web.Response:
        name = request.match_info["index"]
        if request.method == "PUT":
            if any(i.name == name or i.data_stream == name for i in self._indices.values()):
                raise EsError(
                    400,
                    "resource_already_exists_exception",
                    f"index [{name}/{self._indices[name].uuid}] already exists",
                )
            _check_index_name(name)
            body = await self._json(request)
            index = _Index(name, mappings=flatten_properties((body.get("mappings") or {}).get("properties") or {}))
            self._indices[name] = index
            return web.json_response({"acknowledged": True, "shards_acknowledged": True, "index": name})
        if request.method == "HEAD":
            found = self._resolve(name, ignore_unavailable=True)
            return web.Response(status=200 if found else 404, content_type="application/json")
        if request.method == "DELETE":
            for index in self._resolve(name):
                del self._indices[index.name]
            return web.json_response({"acknowledged": True})
        if request.method == "GET":
            return web.json_response({i.name: {"mappings": _mapping_body(i.mappings)} for i in self._resolve(name)})
        raise EsError(405, "method_not_allowed", f"Incorrect HTTP method for uri [{request.path}]")

    def _after_write(self, request: web.Request, indices: list[_Index]) -> None:
        if request.query.get("refresh") in ("", "true", "wait_for"):
            for index in indices:
                index.refresh()

    async def _put_doc(self, request: web.Request) -> web.Response:
        index = self._index_for_write(request.match_info["index"])
        op = "create" if "/_create/" in request.path or request.query.get("op_type") == "create" else "index"
        status, body = self._write(index, op, request.match_info.get("id"), await self._json(request))
        self._after_write(request, [index])
        return web.json_response(body, status=status)

    async def _doc(self, request: web.Request) -> web.Response:
        if request.method in ("PUT", "POST"):
            return await self._put_doc(request)
        name, id_ = request.match_info["index"], request.match_info["id"]
        index = self._resolve(name)[0]
        doc = index.docs.get(id_)  # a get by id is real-time: it does not wait for a refresh
        if request.method == "DELETE":
            if doc is None:
                return web.json_response({"_index": index.name, "_id": id_, "result": "not_found"}, status=404)
            del index.docs[id_]
            index.dirty = True
            self._after_write(request, [index])
            return web.json_response({"_index": index.name, "_id": id_, "result": "deleted", "_shards": _SHARDS})
        if doc is None:
            return web.json_response({"_index": index.name, "_id": id_, "found": False}, status=404)
        return web.json_response(
            {
                "_index": index.name,
                "_id": id_,
                "_version": doc.version,
                "_seq_no": doc.seq_no,
                "_primary_term": 1,
                "found": True,
                "_source": doc.source,
            }
        )

    async def _bulk(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        raw = await request.read()
        if raw and not raw.endswith(b"\n"):
            raise EsError(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
        lines = [line for line in raw.split(b"\n") if line.strip()]
        default_index = request.match_info.get("index")
        items: list[dict[str, Any]] = []
        touched: dict[str, _Index] = {}
        i = 0
        while i < len(lines):
            try:
                action = json.loads(lines[i])
            except ValueError as e:
                raise EsError(
                    400, "x_content_parse_exception", f"[1:1] Malformed action/metadata line [{i + 1}]"
                ) from e
            if not isinstance(action, dict) or len(action) != 1:
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i + 1}], expected START_OBJECT",
                )
            ((op, meta),) = action.items()
            if op not in ("index", "create", "update", "delete"):
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"Malformed action/metadata line [{i + 1}], expected field [create, delete, index, update] but found [{op}]",
                )
            source: Any = None
            if op != "delete":
                if i + 1 >= len(lines):
                    raise EsError(
                        400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"
                    )
                try:
                    source = json.loads(lines[i + 1])
                except ValueError as e:
                    raise EsError(400, "x_content_parse_exception", f"[1:1] failed to parse line [{i + 2}]") from e
                i += 2
            else:
                i += 1
            name = meta.get("_index") or default_index
            id_ = meta.get("_id")
            id_ = str(id_) if id_ is not None else None
            item: dict[str, Any] = {"_index": name, "_id": id_}
            try:
                if not name:
                    raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
                if self._reject_items > 0:
                    self._reject_items -= 1
                    raise EsError(429, *_UNAVAILABLE[429])
                index = self._index_for_write(name)
                touched[index.name] = index
                status, body = self._bulk_item(index, op, id_, source)
                item.update(body)
                item["status"] = status
            except EsError as e:
                item["status"] = e.status
                item["error"] = e.cause()
            items.append({op: item})
        self._after_write(request, list(touched.values()))
        took = int((time.monotonic() - started) * 1000)
        return web.json_response(
            {"errors": any("error" in next(iter(x.values())) for x in items), "took": took, "items": items}
        )

    def _bulk_item(self, index: _Index, op: str, id_: str | None, source: Any) -> tuple[int, dict[str, Any]]:
        if op in ("index", "create"):
            return self._write(index, op, id_, source)
        if id_ is None:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
        existing = index.docs.get(id_)
        if op == "delete":
            if existing is None:
                return 404, {"_index": index.name, "_id": id_, "result": "not_found", "_shards": _SHARDS}
            del index.docs[id_]
            index.dirty = True
            return 200, {"_index": index.name, "_id": id_, "result": "deleted", "_shards": _SHARDS}
        if not isinstance(source, dict) or "doc" not in source:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;")
        if existing is None:
            if not source.get("doc_as_upsert"):
                raise EsError(404, "document_missing_exception", f"[{id_}]: document missing", index=index.name)
            return self._write(index, "index", id_, source["doc"])
        merged = _merge(copy.deepcopy(existing.source), source["doc"])
        status, body = self._write(index, "index", id_, merged)
        return status, body

    async def _refresh(self, request: web.Request) -> web.Response:
        indices = self._resolve(request.match_info.get("index", "_all"))
        for index in indices:
            index.refresh()
        return web.json_response({"_shards": {"total": 2 * len(indices), "successful": len(indices), "failed": 0}})

    def _searchable(self, request: web.Request) -> list[_Index]:
        expression = request.match_info.get("index", "_all")
        indices = self._resolve(expression, ignore_unavailable=request.query.get("ignore_unavailable") == "true")
        for index in indices:
            if self.refresh_interval is not None and time.monotonic() - index.refreshed_at >= self.refresh_interval:
                index.refresh()
        return indices

    async def _count(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        total = 0
        for index in self._searchable(request):
            matches = compile_query(body.get("query"), index.mappings)
            total += sum(1 for id_, d in index.visible.items() if matches(id_, _fields(d, index)))
        return web.json_response({"count": total, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}})

    async def _search(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        body = await self._json(request)
        for param in ("size", "from"):
            if param in request.query:
                body[param] = int(request.query[param])
        size, from_ = int(body.get("size", 10)), int(body.get("from", 0))
        if from_ + size > 10000:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Result window is too large, from + size must be less than or equal to: [10000] but was [{from_ + size}].",
            )
        indices = self._searchable(request)
        mappings: dict[str, str] = {}
        for index in indices:
            mappings.update({k: v for k, v in index.mappings.items() if k not in mappings})
        sort = parse_sort(body["sort"], mappings) if body.get("sort") else []
        after = body.get("search_after")
        if after is not None:
            if not sort:
                raise EsError(400, "illegal_argument_exception", "Sort must contain at least one field.")
            if len(after) != len(sort):
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"search_after has {len(after)} value(s) but sort has {len(sort)}.",
                )
        hits: list[tuple[list[Any], dict[str, Any]]] = []
        seq = 0
        for index in indices:
            matches = compile_query(body.get("query"), index.mappings)
            for id_, doc in index.visible.items():
                fields = _fields(doc, index)
                if matches(id_, fields):
                    key = sort_key(seq, fields, sort)
                    hits.append((key, {"_index": index.name, "_id": id_, "doc": doc}))
                    seq += 1
        ordered = sorted_hits(hits, sort) if sort else hits
        if after is not None:
            compare = compare_keys(sort)
            bound = [_coerce_after(v, t) for v, (_, _, t) in zip(after, sort, strict=True)]
            ordered = [h for h in ordered if compare(h[0], bound) > 0]
        total = len(hits)
        track = body.get("track_total_hits", 10000)
        relation = "eq"
        if track is not True and total > (track if isinstance(track, int) and not isinstance(track, bool) else 10000):
            total, relation = int(track) if not isinstance(track, bool) else 10000, "gte"
        page = ordered[from_ : from_ + size]
        source_filter = _source_filter(body.get("_source", True))
        out_hits = []
        for key, hit in page:
            doc = hit["doc"]
            entry: dict[str, Any] = {"_index": hit["_index"], "_id": hit["_id"], "_score": None if sort else 1.0}
            filtered = source_filter(doc.source)
            if filtered is not None:
                entry["_source"] = filtered
            if sort:
                entry["sort"] = key
            out_hits.append(entry)
        hits_body: dict[str, Any] = {"max_score": None if sort or not page else 1.0, "hits": out_hits}
        if track is not False:
            hits_body = {"total": {"value": total, "relation": relation}, **hits_body}
        return web.json_response(
            {
                "took": int((time.monotonic() - started) * 1000),
                "timed_out": False,
                "_shards": {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0},
                "hits": hits_body,
            }
        )


def _fields(doc: _Doc, index: _Index) -> Fields:
    if doc.fields is None:
        doc.fields = Fields(doc.source, index.mappings)
    return doc.fields


def _check_index_name(name: str) -> None:
    problem = None
    if name != name.lower():
        problem = "must be lowercase"
    elif name[:1] in ("_", "-", "+"):
        problem = "must not start with '_', '-', or '+'"
    elif set(name) & _BAD_INDEX_CHARS:
        problem = 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?, #, :]'
    elif name in (".", "..") or len(name.encode()) > 255:
        problem = "must not be '.' or '..' or longer than 255 bytes"
    if problem:
        raise EsError(400, "invalid_index_name_exception", f"Invalid index name [{name}], {problem}", index=name)


def _coerce_after(value: Any, ftype: str | None) -> Any:
    if value is None or ftype is None:
        return value
    try:
        return check_value(ftype, value)
    except (ValueError, TypeError) as e:
        raise EsError(400, "illegal_argument_exception", f"Failed to parse search_after value [{value}]") from e


def _source_filter(spec: Any) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    if spec is False:
        return lambda _source: None
    if spec is True or spec is None:
        return lambda source: source
    includes = (
        [spec]
        if isinstance(spec, str)
        else list(spec)
        if isinstance(spec, list)
        else list(spec.get("includes") or spec.get("include") or [])
    )
    excludes = [] if not isinstance(spec, dict) else list(spec.get("excludes") or spec.get("exclude") or [])

    def keep(source: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in source.items()
            if (not includes or any(fnmatchcase(k, p) for p in includes))
            and not any(fnmatchcase(k, p) for p in excludes)
        }

    return keep


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = v
    return target


def _mapping_body(mappings: Mapping[str, str]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for path, ftype in sorted(mappings.items()):
        node = properties
        parts = path.split(".")
        for part in parts[:-1]:
            holder = node.setdefault(part, {})
            node = holder.setdefault("fields" if holder.get("type") not in (None, "object") else "properties", {})
        if ftype == "object":
            node.setdefault(parts[-1], {}).setdefault("properties", {})
        else:
            node.setdefault(parts[-1], {})["type"] = ftype
    return {"properties": properties}


def main(argv: list[str] | None = None) -> None:
    """Serve a fake Elasticsearch until interrupted: `python -m tests.fakes.elasticsearch [--port N]`."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(prog="python -m tests.fakes.elasticsearch", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with FakeElasticsearch(port=args.port) as es:
        print(f"fake Elasticsearch on {es.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
