"""Web pages of templates and params: a try's "Rendered" view, and the conf a DAG page's trigger form posts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway import jsonio
from gateway.auth import Actor
from gateway.errors import GatewayError, InvalidRequest, NoSuchInstance, NotFound
from gateway.templates_info import rendered_fields
from gateway.web import gw, int_param, map_index_param, page, render

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
                conf[name] = jsonio.loads(raw, f"param '{name}'")
            except InvalidRequest:
                raise InvalidRequest(
                    f"param '{name}': {raw!r} is not a JSON value (a number, true, a list...; no NaN or Infinity)"
                ) from None
    return conf


def form_field(param: dict[str, Any]) -> str:
    """The form field name a param gets: text params are sent as typed, others as JSON."""
    schema = param.get("schema") or {}
    enum: list[Any] = list(schema.get("enum") or [])
    if enum:
        textual = all(isinstance(v, str) for v in enum)
    elif "type" in schema:
        textual = schema["type"] == "string"
    else:  # no schema: what its default is
        textual = isinstance(param.get("default"), str) or not param.get("has_default", True)
    return (STRING_FIELD if textual else JSON_FIELD) + str(param["name"])


@dataclass(frozen=True)
class TriggerField:
    """One input of the DAG page's trigger form."""

    name: str  # the form field
    label: str
    kind: str  # "select", "number", "text"
    value: str  # the default, as the field shows it ("" when the param has none)
    options: list[tuple[str, str]]  # (value, label) of a select
    required: bool
    description: str
    minimum: Any = None
    maximum: Any = None
    step: str = ""


def trigger_fields(params: list[dict[str, Any]]) -> list[TriggerField]:
    fields: list[TriggerField] = []
    for p in params:
        schema = p.get("schema") or {}
        name = form_field(p)
        textual = name.startswith(STRING_FIELD)

        def shown(value: Any, textual: bool = textual) -> str:
            return value if textual and isinstance(value, str) else json.dumps(value)

        value = shown(p["default"]) if p.get("has_default") and p.get("default") is not None else ""
        options: list[tuple[str, str]] = []
        kind = "text"
        if schema.get("enum"):
            kind, options = "select", [(shown(v), str(v)) for v in schema["enum"]]
        elif schema.get("type") == "boolean":
            kind, options = "select", [("true", "true"), ("false", "false")]
        elif schema.get("type") in ("integer", "number"):
            kind = "number"
        fields.append(
            TriggerField(
                name=name, label=str(schema.get("title") or p["name"]), kind=kind, value=value, options=options,
                required=not p.get("has_default", True), description=str(p.get("description") or ""),
                minimum=schema.get("minimum"), maximum=schema.get("maximum"),
                step="1" if schema.get("type") == "integer" else "any",
            )
        )  # fmt: skip
    return fields


@page
async def rendered_page(request: Request, actor: Actor) -> Response:
    p = request.path_params
    asked = int_param(request, "try_number", None)
    map_index = map_index_param(request)  # one instance of a mapped task
    try:
        info = await rendered_fields(gw(request), actor, p["dag_id"], p["run_id"], p["task_id"], asked, map_index)
        fields = {name: _shown(value) for name, value in info.rendered_fields.items()}
        context: dict[str, Any] = {"p": p, "info": info, "fields": fields, "missing": "", "map_index": map_index}
    except NoSuchInstance:
        raise  # the error page: this map_index names no instance
    except NotFound as e:
        await gw(request).get_run(actor, p["dag_id"], p["run_id"])  # a hidden DAG stays a 404 page
        context = {"p": p, "info": None, "fields": {}, "missing": str(e), "map_index": map_index}
    except GatewayError as e:
        return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)
    return render(request, "rendered.html", context)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
