"""Web pages of templates and params: a try's "Rendered" view, and the conf a DAG page's trigger form posts."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Actor
from gateway.errors import GatewayError, InvalidRequest, NotFound
from gateway.templates_info import rendered_fields
from gateway.web import gw, int_param, page, render

# Trigger form fields: "param.s.<name>" is taken as a string, "param.j.<name>" as JSON (numbers, lists, ...).
STRING_FIELD, JSON_FIELD = "param.s.", "param.j."


def conf_from_form(fields: dict[str, str]) -> dict[str, Any]:
    """The conf a trigger form asks for; empty fields are left out, so the params' defaults apply."""
    conf: dict[str, Any] = {}
    for key, raw in fields.items():
        if key.startswith(STRING_FIELD) and raw != "":
            conf[key[len(STRING_FIELD) :]] = raw
        elif key.startswith(JSON_FIELD) and raw.strip() != "":
            name = key[len(JSON_FIELD) :]
            try:
                conf[name] = json.loads(raw)
            except ValueError:
                raise InvalidRequest(
                    f"param '{name}': {raw!r} is not a JSON value (a number, true, a list...)"
                ) from None
    return conf


def form_field(param: dict[str, Any]) -> str:
    """The form field name a param gets (string-typed params are sent as they are typed)."""
    schema = param.get("schema") or {}
    enum: list[Any] = list(schema.get("enum") or [])
    textual = schema.get("type") == "string" or (bool(enum) and all(isinstance(v, str) for v in enum))
    return (STRING_FIELD if textual else JSON_FIELD) + str(param["name"])


@page
async def rendered_page(request: Request, actor: Actor) -> Response:
    p = request.path_params
    asked = int_param(request, "try_number", None)
    try:
        info = await rendered_fields(gw(request), actor, p["dag_id"], p["run_id"], p["task_id"], asked)
        fields = {name: _shown(value) for name, value in info.rendered_fields.items()}
        context: dict[str, Any] = {"p": p, "info": info, "fields": fields, "missing": ""}
    except NotFound as e:
        await gw(request).get_run(actor, p["dag_id"], p["run_id"])  # a hidden DAG stays a 404 page
        context = {"p": p, "info": None, "fields": {}, "missing": str(e)}
    except GatewayError as e:
        return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)
    return render(request, "rendered.html", context)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
