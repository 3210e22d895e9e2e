"""JSON in and out of the gateway: strict on the way in, never failing on the way out.

In: what a client sends (a REST body, a gRPC `*_json` field, a trigger form's JSON field) must
be JSON as RFC 8259 has it: no NaN or Infinity (Python's json module accepts them, the
database stores them, and then every list that shows them fails), and at most MAX_DEPTH levels
deep (2,000 `[` exhaust the parser's recursion). A refusal is InvalidRequest.

Out: a value read from the database may still hold what was stored before these checks (a
NaN in a run's conf); `dumps` writes it as null rather than fail the whole answer.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse as _StarletteJSONResponse

from gateway.errors import InvalidRequest

# Levels of arrays and objects. MariaDB's JSON columns refuse more than 32, and the audit entry of a
# trigger holds its conf one level down ({"conf": ...}): deeper than this could never be stored.
MAX_DEPTH = 30


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value (JSON has no NaN or Infinity)")


def loads(text: str | bytes, what: str) -> Any:
    """Parses strict JSON; anything else is InvalidRequest naming `what` ("request body", "conf_json")."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except _NotJson as e:
        raise InvalidRequest(f"{what} is not valid JSON: {e}") from None
    except RecursionError:  # the parser gives up about 1,000 levels down
        raise InvalidRequest(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:  # includes UnicodeDecodeError and ints of more than 4,300 digits
        raise InvalidRequest(f"{what} is not valid JSON: {e}") from None
    check_value(value, what)
    return value


def check_value(value: Any, what: str) -> None:
    """Refuses a parsed value JSON cannot carry (a float that is not finite: 1e999 parses to inf) or that
    is nested more than MAX_DEPTH levels deep (every reader after us would have to recurse that far)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidRequest(f"{what} is not valid JSON: numbers must be finite (JSON has no NaN or Infinity)")
        if isinstance(v, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidRequest(f"{what} is nested more than {MAX_DEPTH} levels deep")
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))


def _clean(value: Any, depth: int = 0) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {k: _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON of `value`; a non-finite float in it, or what lies deeper than MAX_DEPTH (stored before
    they were refused), becomes null."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except (ValueError, RecursionError):
        return json.dumps(_clean(value), allow_nan=False, **kwargs)


class JSONResponse(_StarletteJSONResponse):
    """Starlette's JSONResponse, but a stored NaN is written as null instead of failing with a 500."""

    def render(self, content: Any) -> bytes:
        return dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
