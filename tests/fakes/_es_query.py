"""Mappings, the query DSL subset, and sorting for the fake Elasticsearch server."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
INTEGRAL = {"long", "integer", "short", "byte", "unsigned_long"}
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_DATE_MATH = re.compile(r"^now(?:([+-])(\d+)([smhdwMy]))?(?:/[smhdwMy])?$")
_TOKEN = re.compile(r"\w+", re.UNICODE)


class EsError(Exception):
    """An error answer in Elasticsearch's shape: {"error": {"root_cause": [...], "type", "reason"}, "status"}."""

    def __init__(self, status: int, type_: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status, self.type, self.reason, self.extra = status, type_, reason, extra

    def cause(self) -> dict[str, Any]:
        return {"type": self.type, "reason": self.reason, **self.extra}

    def body(self) -> dict[str, Any]:
        return {"error": {"root_cause": [self.cause()], **self.cause()}, "status": self.status}


def parse_date(value: Any) -> int:
    """Epoch milliseconds of an ISO 8601 string, epoch-millis number, or `now[+-N(unit)]`."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if m := _DATE_MATH.match(text):
        now = datetime.now(UTC)
        if m.group(1):
            unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}.get(m.group(3))
            amount = int(m.group(2)) * (30 if m.group(3) == "M" else 365 if m.group(3) == "y" else 1)
            delta = timedelta(**{unit or "days": amount})
            now = now + delta if m.group(1) == "+" else now - delta
        return int(now.timestamp() * 1000)
    if text.isdigit():
        return int(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def flatten_properties(properties: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a": {"properties": {"b": {"type": "keyword"}}}} -> {"a": "object", "a.b": "keyword"}, with multi-fields."""
    fields: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            fields[path] = spec.get("type", "object")
            fields.update(flatten_properties(spec["properties"], path + "."))
            continue
        fields[path] = spec.get("type", "object")
        for sub, sub_spec in (spec.get("fields") or {}).items():
            fields[f"{path}.{sub}"] = sub_spec.get("type", "keyword")
    return fields


def dynamic_type(value: Any, path: str, *, strings_as_keyword: bool) -> dict[str, str]:
    """The fields dynamic mapping adds for a new value (ES defaults: text + .keyword, date detection)."""
    if value is None:
        return {}
    if isinstance(value, list):
        out: dict[str, str] = {}
        for item in value:
            out.update(dynamic_type(item, path, strings_as_keyword=strings_as_keyword))
            if out:
                break
        return out
    if isinstance(value, bool):
        return {path: "boolean"}
    if isinstance(value, int):
        return {path: "long"}
    if isinstance(value, float):
        return {path: "float"}
    if isinstance(value, dict):
        out = {path: "object"}
        for k, v in value.items():
            out.update(dynamic_type(v, f"{path}.{k}", strings_as_keyword=strings_as_keyword))
        return out
    text = str(value)
    if _DATE_LIKE.match(text):
        return {path: "date"}
    if strings_as_keyword:
        return {path: "match_only_text" if path == "message" else "keyword"}
    return {path: "text", f"{path}.keyword": "keyword"}


def source_values(source: Mapping[str, Any], path: str, mappings: Mapping[str, str]) -> list[Any]:
    """The values of a (possibly dotted, possibly multi-field) path in a document's source."""
    if "." not in path:
        value = source.get(path)
        return [] if value is None else [v for v in value if v is not None] if isinstance(value, list) else [value]
    ftype = mappings.get(path)
    parent, _, _ = path.rpartition(".")
    if ftype is not None and parent and mappings.get(parent) not in (None, "object", "nested"):
        path = parent  # a multi-field (x.keyword) reads its parent's value
    found = _walk(source, path.split("."))
    out: list[Any] = []
    for v in found:
        out.extend(v if isinstance(v, list) else [v])
    return [v for v in out if v is not None]


def _walk(node: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [node]
    if isinstance(node, list):
        return [x for item in node for x in _walk(item, parts)]
    if not isinstance(node, dict):
        return []
    out = []
    for i in range(1, len(parts) + 1):  # "a.b" may be one dotted key or nested objects
        key = ".".join(parts[:i])
        if key in node:
            out.extend(_walk(node[key], parts[i:]))
    return out


def check_value(ftype: str, value: Any) -> Any:
    """Coerce a source value to its field type, raising ValueError where Elasticsearch refuses the document."""
    if ftype in INTEGRAL:
        if isinstance(value, bool):
            raise ValueError(value)
        f = float(value)
        if f != int(f):
            return int(f)
        return int(f)
    if ftype in NUMERIC:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if ftype == "date" or ftype == "date_nanos":
        return parse_date(value)
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ValueError(value)
    if ftype in ("object", "nested"):
        if not isinstance(value, dict):
            raise ValueError(value)
        return value
    return value if isinstance(value, str) else _to_str(value)


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tokens(text: str) -> set[str]:
    return {t.lower() for t in _TOKEN.findall(text)}


# --- queries ----------------------------------------------------------------------------------


class Fields:
    """A document's source whose field values are looked up once, like Elasticsearch's doc values."""

    __slots__ = ("_cache", "_mappings", "_typed", "source")

    def __init__(self, source: Mapping[str, Any], mappings: Mapping[str, str]) -> None:
        self.source, self._mappings = source, mappings
        self._cache: dict[str, list[Any]] = {}
        self._typed: dict[tuple[str, str], list[Any]] = {}

    def typed(self, path: str, ftype: str) -> list[Any]:
        """The values coerced to the field's type (those that do not fit left out)."""
        values = self._typed.get((path, ftype))
        if values is None:
            coerced = (_coerce(ftype, v) for v in self.get(path))
            values = self._typed[(path, ftype)] = [v for v in coerced if v is not None]
        return values

    def get(self, path: str) -> list[Any]:
        values = self._cache.get(path)
        if values is None:
            values = self._cache[path] = source_values(self.source, path, self._mappings)
        return values


Doc = Fields
Predicate = Callable[[str, Doc], bool]  # (id, document) -> matches


def compile_query(query: Mapping[str, Any] | None, mappings: Mapping[str, str]) -> Predicate:
    if not query:
        return lambda _id, _doc: True
    if not isinstance(query, Mapping) or len(query) != 1:
        raise EsError(400, "parsing_exception", "[query] malformed query, expected a single query type")
    ((kind, body),) = query.items()
    if kind == "match_all":
        return lambda _id, _doc: True
    if kind == "match_none":
        return lambda _id, _doc: False
    if kind == "bool":
        return _bool(body, mappings)
    if kind == "ids":
        values = {str(v) for v in body.get("values", [])}
        return lambda _id, _doc: _id in values
    if kind == "exists":
        path = body["field"]
        return lambda _id, doc: bool(doc.get(path))
    field_name, arg = _single_field(kind, body)
    if kind == "term":
        value = arg.get("value") if isinstance(arg, dict) else arg
        return _term(field_name, [value], mappings)
    if kind == "terms":
        if not isinstance(arg, list):
            raise EsError(400, "parsing_exception", "[terms] query does not support lookups in the fake")
        return _term(field_name, arg, mappings)
    if kind == "range":
        return _range(field_name, arg, mappings)
    if kind == "prefix":
        value = str(arg.get("value") if isinstance(arg, dict) else arg)
        return lambda _id, doc: any(str(v).startswith(value) for v in doc.get(field_name))
    if kind in ("match", "match_phrase"):
        text = arg.get("query") if isinstance(arg, dict) else arg
        ftype = mappings.get(field_name)
        if ftype in ("text", "match_only_text"):
            wanted = tokens(str(text))
            if kind == "match":
                return lambda _id, doc: any(wanted & tokens(str(v)) for v in doc.get(field_name))
            return lambda _id, doc: any(
                " ".join(_TOKEN.findall(str(text).lower())) in " ".join(_TOKEN.findall(str(v).lower()))
                for v in doc.get(field_name)
            )
        return _term(field_name, [text], mappings)
    raise EsError(400, "parsing_exception", f"unknown query [{kind}]", line=1, col=1)


def _single_field(kind: str, body: Any) -> tuple[str, Any]:
    if not isinstance(body, dict):
        raise EsError(400, "parsing_exception", f"[{kind}] query malformed, no start_object after query name")
    fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
    if len(fields) != 1:
        raise EsError(400, "parsing_exception", f"[{kind}] query doesn't support multiple fields")
    ((name, arg),) = fields.items()
    return name, arg


def _bool(body: Mapping[str, Any], mappings: Mapping[str, str]) -> Predicate:
    def clauses(key: str) -> list[Predicate]:
        raw = body.get(key) or []
        return [compile_query(q, mappings) for q in (raw if isinstance(raw, list) else [raw])]

    must = clauses("must") + clauses("filter")
    should = clauses("should")
    must_not = clauses("must_not")
    minimum = body.get("minimum_should_match", 0 if must else 1)
    minimum = int(minimum) if should else 0

    def matches(id_: str, doc: Doc) -> bool:
        if not all(q(id_, doc) for q in must) or any(q(id_, doc) for q in must_not):
            return False
        return sum(1 for q in should if q(id_, doc)) >= minimum

    return matches


def _term(field_name: str, values: list[Any], mappings: Mapping[str, str]) -> Predicate:
    ftype = mappings.get(field_name)
    if ftype is None:
        return lambda _id, _doc: False
    if ftype in ("text", "match_only_text"):  # terms are not analysed: they match a token as is
        wanted_text = {str(v) for v in values}
        return lambda _id, doc: any(wanted_text & tokens(str(v)) for v in doc.get(field_name))
    try:
        wanted = {check_value(ftype, v) for v in values}
    except (ValueError, TypeError) as e:
        raise EsError(400, "query_shard_exception", f"failed to create query: {e}") from e
    return lambda _id, doc: any(v in wanted for v in doc.typed(field_name, ftype))


def _coerce(ftype: str, value: Any) -> Any:
    try:
        return check_value(ftype, value)
    except (ValueError, TypeError):
        return None


def _range(field_name: str, spec: Mapping[str, Any], mappings: Mapping[str, str]) -> Predicate:
    ftype = mappings.get(field_name)
    if ftype is None:
        return lambda _id, _doc: False
    bounds = []
    for op in ("gt", "gte", "lt", "lte"):
        if spec.get(op) is not None:
            try:
                bounds.append((op, check_value(ftype, spec[op])))
            except (ValueError, TypeError) as e:
                raise EsError(400, "parse_exception", f"failed to parse [{spec[op]}] for field [{field_name}]") from e

    def in_range(v: Any) -> bool:
        for op, bound in bounds:
            if (
                (op == "gt" and not v > bound)
                or (op == "gte" and not v >= bound)
                or (op == "lt" and not v < bound)
                or (op == "lte" and not v <= bound)
            ):
                return False
        return True

    return lambda _id, doc: any(in_range(v) for v in doc.typed(field_name, ftype))


# --- sorting ----------------------------------------------------------------------------------

_TEXT_SORT = (
    "Text fields are not optimised for operations that require per-document field data like aggregations and "
    "sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set "
    "fielddata=true on [{}] in order to load field data by uninverting the inverted index. Note that this can use "
    "significant memory."
)


def parse_sort(sort: Any, mappings: Mapping[str, str]) -> list[tuple[str, bool, str | None]]:
    """[(field, descending, type)] from the `sort` body in any of its accepted shapes."""
    items = sort if isinstance(sort, list) else [sort]
    out: list[tuple[str, bool, str | None]] = []
    for item in items:
        spec: dict[str, Any]
        if isinstance(item, str):
            name, spec = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            ((name, spec),) = item.items()
            spec = {"order": spec} if isinstance(spec, str) else dict(spec)
        else:
            raise EsError(400, "parsing_exception", f"malformed sort {item!r}")
        desc = spec.get("order", "desc" if name == "_score" else "asc") == "desc"
        if name in ("_doc", "_score"):
            out.append((name, desc, None))
            continue
        ftype = mappings.get(name) or spec.get("unmapped_type")
        if ftype is None:
            raise EsError(
                400,
                "search_phase_execution_exception",
                "all shards failed",
                phase="query",
                grouped=True,
                failed_shards=[
                    {
                        "reason": {
                            "type": "query_shard_exception",
                            "reason": f"No mapping found for [{name}] in order to sort on",
                        }
                    }
                ],
            )
        if ftype in ("text", "match_only_text"):
            raise EsError(400, "illegal_argument_exception", _TEXT_SORT.format(name))
        out.append((name, desc, ftype))
    return out


def sort_key(seq: int, doc: Doc, sort: list[tuple[str, bool, str | None]]) -> list[Any]:
    """The hit's `sort` values, as Elasticsearch returns them (dates as epoch millis)."""
    key: list[Any] = []
    for name, desc, ftype in sort:
        if name == "_doc":
            key.append(seq)
        elif name == "_score":
            key.append(1.0)
        else:
            values = doc.typed(name, ftype or "keyword")
            key.append((max(values) if desc else min(values)) if values else None)
    return key


def compare_keys(sort: list[tuple[str, bool, str | None]]) -> Callable[[list[Any], list[Any]], int]:
    def compare(a: list[Any], b: list[Any]) -> int:
        for (_, desc, _t), x, y in zip(sort, a, b, strict=True):
            if x == y:
                continue
            if x is None:  # missing values sort last in both directions
                return 1
            if y is None:
                return -1
            result = -1 if x < y else 1
            return -result if desc else result
        return 0

    return compare


Hit = tuple[list[Any], Any]


def sorted_hits(hits: list[Hit], sort: list[tuple[str, bool, str | None]]) -> list[Hit]:
    """Stable multi-pass sort, last key first; missing values last in both directions."""
    ordered = list(hits)
    for i in reversed(range(len(sort))):
        desc = sort[i][1]
        if desc:
            ordered.sort(key=lambda h, i=i: (h[0][i] is not None, h[0][i]), reverse=True)  # type: ignore[misc]
        else:
            ordered.sort(key=lambda h, i=i: (h[0][i] is None, h[0][i]))  # type: ignore[misc]
    return ordered
