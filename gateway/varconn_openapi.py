"""The OpenAPI paths of variables and connections (gateway/varconn_http.py), merged into gateway/openapi.py."""

from __future__ import annotations

from typing import Any

from gateway.openapi import _body, _errors, _ok, _op, _path_param, _query

ADMIN = "admin"  # Admin only; every change, every read of a value and every refusal is audited
ON_EXISTING = {
    "type": "string",
    "enum": ["overwrite", "skip", "fail"],
    "description": "what to do with keys that exist: replace them (default), leave them, or refuse the import",
}
VARIABLE = {
    "type": "object",
    "required": ["key"],
    "properties": {
        "key": {"type": "string"},
        "value": {"type": "string", "description": "only when reading one variable, or with include_values"},
        "description": {"type": "string"},
        "updated_at": {"type": ["string", "null"]},
        "updated_by": {"type": "string"},
        "sensitive": {"type": "boolean", "description": "its key looks secret: masked as *** in task logs"},
    },
}
CONNECTION_FIELDS = {
    "conn_type": {"type": "string", "description": "e.g. postgres, mysql, http, aws (required with fields)"},
    "description": {"type": "string"},
    "host": {"type": "string"},
    "schema": {"type": "string"},
    "login": {"type": "string"},
    "password": {"type": ["string", "null"]},
    "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
    "extra": {
        "oneOf": [{"type": "object"}, {"type": "string"}, {"type": "null"}],
        "description": "a JSON object (or its text)",
    },
}
CONNECTION = {
    "type": "object",
    "required": ["conn_id", "conn_type"],
    "properties": {
        "conn_id": {"type": "string"},
        **CONNECTION_FIELDS,
        "uri": {"type": "string", "description": "the whole connection as a URI (when secrets are shown)"},
        "has_password": {"type": "boolean", "description": "in lists, instead of the password"},
        "has_extra": {"type": "boolean", "description": "in lists, instead of the extra"},
        "updated_at": {"type": ["string", "null"]},
        "updated_by": {"type": "string"},
    },
}
CONNECTION_INPUT = {
    "oneOf": [
        {
            "type": "object",
            "required": ["uri"],
            "properties": {"uri": {"type": "string"}, "description": {"type": "string"}},
            "additionalProperties": False,
        },
        {
            "type": "object",
            "required": ["conn_type"],
            "properties": CONNECTION_FIELDS,
            "additionalProperties": False,
        },
    ],
    "description": "a URI (scheme://login:password@host:port/schema?extra=...) or the fields",
}


def varconn_paths() -> dict[str, Any]:
    key = _path_param("key", "a variable's key")
    conn_id = _path_param("conn_id", "a connection's id")
    changed = {"type": "object", "properties": {"created": {"type": "boolean"}}}
    imported = {
        "type": "object",
        "properties": {
            "imported": {"type": "array", "items": {"type": "string"}},
            "skipped": {"type": "array", "items": {"type": "string"}},
        },
    }
    deleted = {"204": {"description": "deleted"}, **_errors(400, 401, 403, 404, 503)}
    return {
        "/variables": {
            "get": _op(
                "variables without their values; include_values=true exports them with values",
                {
                    **_ok({"type": "object", "properties": {"variables": {"type": "array", "items": VARIABLE}}}),
                    **_errors(403, 503),
                },
                params=[_query("include_values", {"type": "boolean"}, "also each value (an audited export)")],
                tag=ADMIN,
            ),
            "post": _op(
                "import variables: non-string values are stored as their JSON",
                {**_ok(imported), **_errors(403, 409, 503)},
                body=_body(
                    {
                        "type": "object",
                        "required": ["variables"],
                        "properties": {"variables": {"type": "object"}, "on_existing": ON_EXISTING},
                        "additionalProperties": False,
                    },
                    required=True,
                ),
                tag=ADMIN,
            ),
        },
        "/variables/{key}": {
            "parameters": [key],
            "get": _op("a variable with its value", {**_ok(VARIABLE), **_errors(403, 404, 409, 503)}, tag=ADMIN),
            "put": _op(
                "create or replace a variable",
                {**_ok(changed), **_ok(changed, "201", "created"), **_errors(403, 409, 503)},
                body=_body(
                    {
                        "type": "object",
                        "required": ["value"],
                        "properties": {"value": {"type": "string"}, "description": {"type": "string"}},
                        "additionalProperties": False,
                    },
                    required=True,
                ),
                tag=ADMIN,
            ),
            "delete": {**_op("delete a variable", {}, tag=ADMIN), "responses": deleted},
        },
        "/connections": {
            "get": _op(
                "connections without passwords and extras; include_secrets=true exports them whole",
                {
                    **_ok({"type": "object", "properties": {"connections": {"type": "array", "items": CONNECTION}}}),
                    **_errors(403, 503),
                },
                params=[
                    _query("include_secrets", {"type": "boolean"}, "also passwords and extras (an audited export)")
                ],
                tag=ADMIN,
            ),
            "post": _op(
                "import connections: each a URI or an object of its fields",
                {**_ok(imported), **_errors(403, 409, 503)},
                body=_body(
                    {
                        "type": "object",
                        "required": ["connections"],
                        "properties": {
                            "connections": {"type": "object", "additionalProperties": CONNECTION_INPUT},
                            "on_existing": ON_EXISTING,
                        },
                        "additionalProperties": False,
                    },
                    required=True,
                ),
                tag=ADMIN,
            ),
        },
        "/connections/{conn_id}": {
            "parameters": [conn_id],
            "get": _op(
                "a connection with its password, extra and URI",
                {**_ok(CONNECTION), **_errors(403, 404, 409, 503)},
                tag=ADMIN,
            ),
            "put": _op(
                "create or replace a connection, from a URI or from its fields",
                {**_ok(changed), **_ok(changed, "201", "created"), **_errors(403, 409, 503)},
                body=_body(CONNECTION_INPUT, required=True),
                tag=ADMIN,
            ),
            "delete": {**_op("delete a connection", {}, tag=ADMIN), "responses": deleted},
        },
    }
