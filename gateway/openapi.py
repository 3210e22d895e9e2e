"""The OpenAPI 3.1 document of /api/v1, written by hand next to the routes it describes.

tests/integration/gateway/test_openapi.py checks that every route is documented and
fuzzes the API from this document (schemathesis): nothing may answer 5xx.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from spinner import triggering

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


PAGING = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many items"),
    _query("offset", {"type": "integer", "minimum": 0}, "skip this many items"),
]
DAG_ID = _path_param("dag_id", "a DAG id")
# A new run's id (spinner/triggering.py RUN_ID_RE; docs/authoring.md "Run ids").
RUN_ID_PATTERN = f"^{triggering.RUN_ID_RE.pattern}$"
RUN_ID = _path_param("run_id", "a run id of the DAG")
TASK_ID = _path_param("task_id", "a task id of the DAG")


def _ok(schema: dict[str, Any], status: str = "200", description: str = "OK") -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": schema}}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "malformed request",
        401: "not authenticated",
        403: "not allowed (needs can_dag_edit, Admin, or a CSRF token)",
        404: "not found, or a DAG the caller may not read",
        409: "conflicts with the current state",
        429: "too many failed logins for this user or from this address lately; try again in a few seconds",
        503: "the owning service is not reachable right now",
    }
    return {str(c): {"description": text[c], "content": {JSON: {"schema": _ref("Error")}}} for c in codes}


def _body(schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    tag: str = "dags",
    public: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {**responses, **_errors(400)}}
    if not public:
        op["responses"].update(_errors(401))
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


SELECTION = {
    "task_ids": {"type": "array", "items": {"type": "string"}, "description": "default: every task"},
    "include_upstream": {"type": "boolean"},
    "include_downstream": {"type": "boolean"},
    "map_indexes": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 2147483647},
        "maxItems": 10000,
        "description": "only these instances of the mapped tasks in task_ids (which every one of them must have; "
        "needs task_ids); default: every instance. Tasks taken in by include_upstream/downstream are taken whole",
    },
}
MAP_INDEX_SCHEMA = {"type": "integer", "minimum": -1, "maximum": 2147483647}
# Where one task instance is meant (docs/adr/0007-dynamic-task-mapping.md).
MAP_INDEX = _query(
    "map_index",
    MAP_INDEX_SCHEMA,
    "which instance of a mapped task (0, 1, ...); default -1, an unmapped task's one instance. A map_index "
    "the task has no instance with is a 404 that names the instances it has",
)
NULLABLE_STR = {"type": ["string", "null"]}
LOG_PARAMS = [
    _query("try_number", {"type": "integer", "minimum": 1}, "default: the latest try"),
    _query("offset", {"type": "integer", "minimum": 0}, "first line to return"),
    MAP_INDEX,
]
SECTION = {
    "type": "string",
    "enum": ["", "readiness", "task"],
    "description": "the runner's section the line is in ('' before its first section marker)",
}
LOG_STATUS = {
    "next_offset": {"type": "integer", "description": "offset to ask for next"},
    "source": {"type": "string", "description": "which store answered: local, pod, s3, elasticsearch"},
    "complete": {"type": "boolean", "description": "the try has ended and every line was returned"},
    "readiness": {
        "type": "string",
        "enum": ["", "running", "passed", "failed"],
        "description": "how the readiness checks went, when known",
    },
    "fallback_reason": {"type": "string", "description": "why the preferred store did not answer, when another did"},
}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Dag": {
        "type": "object",
        "required": ["dag_id", "partition", "tier", "is_paused"],
        "properties": {
            "dag_id": {"type": "string"},
            "partition": {"type": "string"},
            "tier": {"type": "integer"},
            "schedule": NULLABLE_STR,
            "is_paused": {"type": "boolean"},
            "owner": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "description": {"type": "string"},
            "bundle_version": {"type": "string"},
            "fileloc": {"type": "string"},
            "next_dagrun": NULLABLE_STR,
            "timezone": {"type": "string", "description": "the IANA zone its schedule runs in; times are UTC"},
            "params": {"type": "array", "items": _ref("DagParam"), "description": "what a trigger's conf may set"},
        },
    },
    "DagParam": {
        "type": "object",
        "required": ["name", "has_default", "schema"],
        "properties": {
            "name": {"type": "string"},
            "has_default": {"type": "boolean", "description": "false: the param is required in a trigger's conf"},
            "default": {},
            "schema": {"type": "object", "description": "its JSON Schema (type, enum, minimum, ...)"},
            "description": NULLABLE_STR,
        },
    },
    "RenderedFields": {
        "type": "object",
        "required": ["dag_id", "run_id", "task_id", "map_index", "try_number", "rendered_fields"],
        "properties": {
            "dag_id": {"type": "string"},
            "run_id": {"type": "string"},
            "task_id": {"type": "string"},
            "map_index": {"type": "integer", "description": "-1: an unmapped task; else the mapped task's instance"},
            "try_number": {"type": "integer"},
            "rendered_fields": {"type": "object", "description": "templated field -> value as rendered"},
            "rendered_at": NULLABLE_STR,
        },
    },
    "DagRun": {
        "type": "object",
        "required": ["dag_id", "run_id", "state"],
        "properties": {
            "dag_id": {"type": "string"},
            "run_id": {"type": "string"},
            "state": {"type": "string"},
            "run_type": {"type": "string"},
            "logical_date": NULLABLE_STR,
            "start_date": NULLABLE_STR,
            "end_date": NULLABLE_STR,
            "conf": {"type": "object"},
            "triggered_by": {"type": "string"},
            "triggering": {
                "type": ["object", "null"],
                "description": "The task whose TriggerDagRunOperator made this run",
                "properties": {
                    "dag_id": {"type": "string"},
                    "run_id": {"type": "string"},
                    "task_id": {"type": "string"},
                },
            },
        },
    },
    "TaskInstance": {
        "type": "object",
        "required": ["task_id", "map_index", "try_number"],
        "properties": {
            "dag_id": {"type": "string"},
            "run_id": {"type": "string"},
            "task_id": {"type": "string"},
            "map_index": {
                "type": "integer",
                "description": "-1: an unmapped task, or a mapped one not expanded yet; 0, 1, ...: a mapped task's "
                "instances, one item each (a run lists every instance)",
            },
            "state": NULLABLE_STR,
            "try_number": {"type": "integer"},
            "max_tries": {"type": "integer"},
            "start_date": NULLABLE_STR,
            "end_date": NULLABLE_STR,
            "duration": {"type": ["number", "null"]},
            "reschedule_count": {"type": "integer", "description": "a reschedule-mode sensor's pokes so far"},
            "reschedule_at": {**NULLABLE_STR, "description": "next poke, while up_for_reschedule"},
        },
    },
    "XCom": {
        "type": "object",
        "required": ["key", "value", "map_index", "size", "timestamp"],
        "properties": {
            "key": {"type": "string", "description": "return_value for a task's return value"},
            "value": {"description": "the JSON value as the task pushed it"},
            "map_index": {"type": "integer", "description": "the instance that pushed it; -1: not a mapped task"},
            "size": {"type": "integer", "description": "bytes of the value's JSON"},
            "timestamp": NULLABLE_STR,
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": ["id", "ts", "username", "action", "outcome"],
        "properties": {
            "id": {"type": "integer"},
            "ts": {"type": "string"},
            "username": {"type": "string"},
            "action": {"type": "string"},
            "dag_id": NULLABLE_STR,
            "run_id": NULLABLE_STR,
            "task_id": NULLABLE_STR,
            "remote_addr": {"type": "string"},
            "outcome": {"type": "string", "enum": ["ok", "denied", "error"]},
            "details": {"type": "object"},
        },
    },
    "User": {
        "type": "object",
        "required": ["username", "roles", "active"],
        "properties": {
            "username": {"type": "string"},
            "email": {"type": "string"},
            "active": {"type": "boolean"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "password": {"type": "string"},
        },
    },
    "Role": {
        "type": "object",
        "required": ["name", "permissions"],
        "properties": {
            "name": {"type": "string"},
            "permissions": {
                "type": "array",
                "description": "what Admins gave the role (PUT /roles/{name} sets exactly these)",
                "items": {
                    "type": "object",
                    "properties": {"action": {"type": "string"}, "resource": {"type": "string"}},
                },
            },
            "from_dag_files": {
                "type": "array",
                "description": "what DAG files' access_control give the role (synced at parse and refresh; "
                "read-only here). The role may do the union of both lists.",
                "items": {
                    "type": "object",
                    "properties": {"action": {"type": "string"}, "resource": {"type": "string"}},
                },
            },
        },
    },
    "Token": {
        "type": "object",
        "required": ["token", "username"],
        "properties": {
            "token": {"type": "string"},
            "username": {"type": "string"},
            "name": {"type": "string"},
            "expires_at": NULLABLE_STR,
        },
    },
    "LogChunk": {
        "type": "object",
        "required": ["lines", "sections", "next_offset", "source", "complete", "try_number"],
        "properties": {
            "lines": {"type": "array", "items": {"type": "string"}, "description": "from the requested offset on"},
            "sections": {"type": "array", "items": SECTION, "description": "the section of each line"},
            "try_number": {"type": "integer"},
            **LOG_STATUS,
        },
    },
    "LogEvent": {
        "type": "object",
        "required": ["lines", "next_offset", "source", "complete"],
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["offset", "text", "section"],
                    "properties": {"offset": {"type": "integer"}, "text": {"type": "string"}, "section": SECTION},
                },
            },
            **LOG_STATUS,
        },
    },
    "TaskIds": {"type": "object", "properties": {"task_ids": {"type": "array", "items": {"type": "string"}}}},
    "Try": {
        "type": "object",
        "required": ["map_index", "try_number", "state"],
        "properties": {
            "map_index": {"type": "integer"},
            "try_number": {"type": "integer"},
            "state": {"type": "string"},
            "start_date": NULLABLE_STR,
            "end_date": NULLABLE_STR,
            "duration": {"type": ["number", "null"]},
            "hostname": {"type": "string"},
            "error": {"type": "string"},
        },
    },
}


def _paths() -> dict[str, Any]:
    from gateway.varconn_openapi import varconn_paths  # it builds on this module's helpers

    dag_list_params = [
        *PAGING,
        _query("search", {"type": "string"}, "part of the DAG id, description or owner"),
        _query("tier", {"type": "integer"}, "1, 2 or 3"),
        _query("partition", {"type": "string"}, "e.g. spinner_tier_1_0"),
        _query("tag", {"type": "string"}, "one tag"),
        _query("owner", {"type": "string"}, "owner"),
        _query("paused", {"type": "boolean"}, "paused or not"),
        _query("failing", {"type": "boolean"}, "whose newest run failed (or not)"),
    ]
    obj = {"type": "object"}
    return {
        "/health": {"get": _op("liveness", _ok({"type": "object"}), tag="meta", public=True)},
        "/openapi.json": {"get": _op("this document", _ok(obj), tag="meta", public=True)},
        "/auth/token": {
            "post": _op(
                "exchange a user name and password for an API token",
                {**_ok(_ref("Token"), "201", "a new token, shown once"), **_errors(401, 429)},
                body=_body(
                    {
                        "type": "object",
                        "required": ["username", "password"],
                        "properties": {
                            "username": {"type": "string"},
                            "password": {"type": "string"},
                            "name": {"type": "string"},
                            "expires_in_days": {"type": "integer"},
                        },
                        "additionalProperties": False,
                    },
                    required=True,
                ),
                tag="auth",
                public=True,
            )
        },
        "/me": {"get": _op("who the caller is", _ok(obj), tag="auth")},
        "/dags": {
            "get": _op(
                "DAGs the caller may read",
                _ok(
                    {
                        "type": "object",
                        "properties": {"dags": {"type": "array", "items": _ref("Dag")}, "total": {"type": "integer"}},
                    }
                ),
                params=dag_list_params,
            )
        },
        "/dags/{dag_id}": {
            "parameters": [DAG_ID],
            "get": _op("a DAG, with its access control", {**_ok(_ref("Dag")), **_errors(404)}),
            "patch": _op(
                "pause or unpause (needs can_dag_edit)",
                {**_ok(_ref("Dag")), **_errors(403, 404, 503)},
                body=_body(
                    {"type": "object", "properties": {"is_paused": {"type": "boolean"}}, "additionalProperties": False},
                    required=True,
                ),
            ),
        },
        "/dags/{dag_id}/tasks": {
            "parameters": [DAG_ID],
            "get": _op("the DAG's tasks and their upstream tasks", {**_ok(obj), **_errors(404)}),
        },
        "/dags/{dag_id}/refresh": {
            "parameters": [DAG_ID],
            "post": _op(
                "re-apply the DAG's access_control to the roles (needs can_dag_edit)", {**_ok(obj), **_errors(403, 404)}
            ),
        },
        "/dags/{dag_id}/backfill": {
            "parameters": [DAG_ID],
            "post": _op(
                "create runs for past intervals (needs can_dag_edit)",
                {**_ok(obj, "201"), **_errors(403, 404, 409, 503)},
                body=_body(
                    {
                        "type": "object",
                        "required": ["start", "end"],
                        "properties": {"start": {"type": "string"}, "end": {"type": "string"}, "conf": obj},
                        "additionalProperties": False,
                    },
                    required=True,
                ),
            ),
        },
        "/dags/{dag_id}/runs": {
            "parameters": [DAG_ID],
            "get": _op(
                "recent runs, newest first",
                {
                    **_ok({"type": "object", "properties": {"runs": {"type": "array", "items": _ref("DagRun")}}}),
                    **_errors(404),
                },
                params=[PAGING[0]],
            ),
            "post": _op(
                "trigger a run (needs can_dag_edit)",
                {**_ok(_ref("DagRun"), "201"), **_errors(403, 404, 409, 503)},
                body=_body(
                    {
                        "type": "object",
                        "properties": {"conf": obj, "run_id": {"type": "string", "pattern": RUN_ID_PATTERN}},
                        "additionalProperties": False,
                    }
                ),
            ),
        },
        "/dags/{dag_id}/runs/{run_id}": {
            "parameters": [DAG_ID, RUN_ID],
            "get": _op("a run", {**_ok(_ref("DagRun")), **_errors(404)}),
        },
        "/dags/{dag_id}/runs/{run_id}/clear": {
            "parameters": [DAG_ID, RUN_ID],
            "post": _op(
                "run task instances again (needs can_dag_edit)",
                {**_ok(_ref("TaskIds")), **_errors(403, 404, 409, 503)},
                body=_body(
                    {
                        "type": "object",
                        "properties": {**SELECTION, "only_failed": {"type": "boolean"}},
                        "additionalProperties": False,
                    }
                ),
            ),
        },
        "/dags/{dag_id}/runs/{run_id}/mark": {
            "parameters": [DAG_ID, RUN_ID],
            "post": _op(
                "set task instances to success or failed (needs can_dag_edit)",
                {**_ok(_ref("TaskIds")), **_errors(403, 404, 409, 503)},
                body=_body(
                    {
                        "type": "object",
                        "required": ["state"],
                        "properties": {**SELECTION, "state": {"type": "string", "enum": ["success", "failed"]}},
                        "additionalProperties": False,
                    },
                    required=True,
                ),
            ),
        },
        "/dags/{dag_id}/runs/{run_id}/tasks": {
            "parameters": [DAG_ID, RUN_ID],
            "get": _op(
                "the run's task instances",
                {
                    **_ok(
                        {
                            "type": "object",
                            "properties": {"task_instances": {"type": "array", "items": _ref("TaskInstance")}},
                        }
                    ),
                    **_errors(404),
                },
            ),
        },
        "/dags/{dag_id}/runs/{run_id}/callbacks": {
            "parameters": [DAG_ID, RUN_ID],
            "get": _op(
                "the run's DAG callbacks (each ran in a process of its own: its log is the task log of "
                "log_task_id, try_number id) and its missed deadline, null when none was missed",
                {
                    **_ok(
                        {
                            "type": "object",
                            "properties": {
                                "callbacks": {"type": "array", "items": obj},
                                "deadline_missed": {"oneOf": [obj, {"type": "null"}]},
                            },
                        }
                    ),
                    **_errors(404),
                },
            ),
        },
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/tries": {
            "parameters": [DAG_ID, RUN_ID, TASK_ID],
            "get": _op(
                "a task instance's ended tries, first first",
                {
                    **_ok({"type": "object", "properties": {"tries": {"type": "array", "items": _ref("Try")}}}),
                    **_errors(404),
                },
                params=[MAP_INDEX],
            ),
        },
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/rendered": {
            "parameters": [DAG_ID, RUN_ID, TASK_ID],
            "get": _op(
                "a try's templated fields as rendered before it executed",
                {**_ok(_ref("RenderedFields")), **_errors(400, 404)},
                params=[
                    _query("try_number", {"type": "integer", "minimum": 0}, "the try (0 or none: the latest)"),
                    MAP_INDEX,
                ],
            ),
        },
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/xcom": {
            "parameters": [DAG_ID, RUN_ID, TASK_ID],
            "get": _op(
                "the XComs the task instance pushed (its current try's), by map index and key",
                {
                    **_ok(
                        {
                            "type": "object",
                            "required": ["xcoms"],
                            "properties": {"xcoms": {"type": "array", "items": _ref("XCom")}},
                        }
                    ),
                    **_errors(404),
                },
                params=[
                    _query(
                        "map_index",
                        MAP_INDEX_SCHEMA,
                        "only this instance of a mapped task; default: every instance's (each item says its map_index)",
                    )
                ],
            ),
        },
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/logs": {
            "parameters": [DAG_ID, RUN_ID, TASK_ID],
            "get": _op(
                "a chunk of a try's log, from a line offset",
                {**_ok(_ref("LogChunk")), **_errors(404, 503)},
                params=LOG_PARAMS,
            ),
        },
        "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/logs/stream": {
            "parameters": [DAG_ID, RUN_ID, TASK_ID],
            "get": _op(
                "a try's log followed as it grows, as Server-Sent Events, until it is complete",
                {
                    "200": {
                        "description": "text/event-stream. Each event's data is a LogEvent (JSON) and its id the "
                        "offset to go on from; the stream ends after the event whose complete is true. A failure "
                        'after the stream began is an event named "error" whose data is an Error, then the end.',
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(404, 503),
                },
                params=[
                    *LOG_PARAMS,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "a reconnecting client's last event id: the offset to go on from (wins)",
                        "schema": {"type": "string"},
                    },
                ],
            ),
        },
        "/import-errors": {"get": _op("DAG files that failed to load", _ok(obj))},
        "/audit": {
            "get": _op(
                "audit entries the caller may see, newest first",
                _ok(
                    {
                        "type": "object",
                        "properties": {
                            "entries": {"type": "array", "items": _ref("AuditEntry")},
                            "total": {"type": "integer"},
                        },
                    }
                ),
                params=[
                    *PAGING,
                    _query("dag_id", {"type": "string"}, "one DAG"),
                    _query("username", {"type": "string"}, "one user"),
                    _query("action", {"type": "string"}, "e.g. trigger, login, user.create"),
                    _query("outcome", {"type": "string", "enum": ["ok", "denied", "error"]}, "outcome"),
                ],
                tag="audit",
            )
        },
        "/pools": {"get": _op("pools and their use", _ok(obj), tag="pools")},
        "/pools/{name}": {
            "parameters": [_path_param("name", "pool name")],
            "put": _op(
                "create a pool or change its slots (Admin)",
                {**_ok(obj), **_errors(403)},
                body=_body(
                    {
                        "type": "object",
                        "required": ["slots"],
                        "properties": {
                            "slots": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                            "description": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                    required=True,
                ),
                tag="pools",
            ),
        },
        "/users": {
            "get": _op("users (Admin)", {**_ok(obj), **_errors(403)}, tag="admin"),
            "post": _op(
                "create a user (Admin); without a password one is made and returned once",
                {**_ok(_ref("User"), "201"), **_errors(403, 409)},
                body=_body(
                    {
                        "type": "object",
                        "required": ["username"],
                        "properties": {
                            "username": {"type": "string"},
                            "password": {"type": "string"},
                            "email": {"type": "string"},
                            "roles": {"type": "array", "items": {"type": "string"}},
                        },
                        "additionalProperties": False,
                    },
                    required=True,
                ),
                tag="admin",
            ),
        },
        "/users/{username}": {
            "parameters": [_path_param("username", "user name")],
            "patch": _op(
                "change a user's roles, password or whether they may log in (Admin); a new password or "
                "active false ends every browser session of the user",
                {**_ok(_ref("User")), **_errors(403, 404)},
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "password": {"type": "string"},
                            "active": {"type": "boolean"},
                            "roles": {"type": "array", "items": {"type": "string"}},
                        },
                        "additionalProperties": False,
                    },
                    required=True,
                ),
                tag="admin",
            ),
            "delete": {
                **_op("delete a user (Admin)", _errors(403, 404), tag="admin"),
                "responses": {"204": {"description": "deleted"}, **_errors(400, 401, 403, 404)},
            },
        },
        "/users/{username}/tokens": {
            "parameters": [_path_param("username", "user name")],
            "post": _op(
                "a new API token (Admin, or the user themself)",
                {**_ok(_ref("Token"), "201"), **_errors(403, 404)},
                body=_body(
                    {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "expires_in_days": {"type": "integer"}},
                        "additionalProperties": False,
                    }
                ),
                tag="admin",
            ),
        },
        "/roles": {"get": _op("roles and their permissions (Admin)", {**_ok(obj), **_errors(403)}, tag="admin")},
        "/roles/{name}": {
            "parameters": [_path_param("name", "role name")],
            "put": _op(
                "create a role; with permissions, make its DAG permissions exactly those (Admin)",
                {**_ok(_ref("Role")), **_errors(403)},
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "permissions": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["action", "dag_id"],
                                    "properties": {
                                        "action": {"type": "string", "enum": ["can_dag_read", "can_dag_edit"]},
                                        "dag_id": {"type": "string"},
                                    },
                                },
                            }
                        },
                        "additionalProperties": False,
                    }
                ),
                tag="admin",
            ),
            "delete": {
                **_op("delete a role (Admin)", {}, tag="admin"),
                "responses": {"204": {"description": "deleted"}, **_errors(400, 401, 403, 404)},
            },
        },
        **varconn_paths(),
    }


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Spinner API",
            "version": "1",
            "description": "DAGs, runs, task logs, audit, users, roles, variables and connections. Authenticate with "
            "'Authorization: Bearer <token>' (POST /auth/token, or `spinner login`). Errors are "
            '{"error": {"code", "message"}}.',
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": _paths(),
    }
