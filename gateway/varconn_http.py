"""REST endpoints and web pages of variables and connections (Admin only; the engine is gateway/varconn.py).

REST (documented in gateway/openapi.py):
  GET    /api/v1/variables[?include_values=true]      list (with values: an export)
  POST   /api/v1/variables                            import {"variables": {key: value}, "on_existing"}
  GET|PUT|DELETE /api/v1/variables/{key}              one variable ({"value", "description"})
  GET    /api/v1/connections[?include_secrets=true]   list (with passwords and extras: an export)
  POST   /api/v1/connections                          import {"connections": {conn_id: URI or fields}}
  GET|PUT|DELETE /api/v1/connections/{conn_id}        one connection (fields, or {"uri"})
Pages: /admin/variables and /admin/connections, form posts with the session's CSRF token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.auth import Actor
from gateway.errors import GatewayError, InvalidRequest
from gateway.jsonio import JSONResponse
from gateway.varconn import CONN_FIELDS, VarConn
from gateway.web import api, bool_param, json_body, page, render


def varconn(request: Request) -> VarConn:
    v: VarConn = request.app.state.varconn
    return v


# --- REST ----------------------------------------------------------------------------------


@api
async def list_variables(request: Request, actor: Actor) -> Response:
    values = bool_param(request, "include_values") or False
    variables = await varconn(request).list_variables(actor, include_values=values)
    return JSONResponse({"variables": variables, "total": len(variables)})


@api
async def import_variables(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"variables", "on_existing"})
    if "variables" not in body:
        raise InvalidRequest('send {"variables": {"key": "value", ...}}')
    result = await varconn(request).import_variables(actor, body["variables"], body.get("on_existing", "overwrite"))
    return JSONResponse(result)


@api
async def get_variable(request: Request, actor: Actor) -> Response:
    return JSONResponse(await varconn(request).get_variable(actor, request.path_params["key"]))


@api
async def put_variable(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"value", "description"})
    if "value" not in body and actor.principal.is_admin:
        raise InvalidRequest('send {"value": "...", "description": "..."}')
    result = await varconn(request).set_variable(
        actor, request.path_params["key"], body.get("value"), body.get("description")
    )
    return JSONResponse(result, status_code=201 if result["created"] else 200)


@api
async def delete_variable(request: Request, actor: Actor) -> Response:
    await varconn(request).delete_variable(actor, request.path_params["key"])
    return Response(status_code=204)


@api
async def list_connections(request: Request, actor: Actor) -> Response:
    secrets = bool_param(request, "include_secrets") or False
    connections = await varconn(request).list_connections(actor, include_secrets=secrets)
    return JSONResponse({"connections": connections, "total": len(connections)})


@api
async def import_connections(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"connections", "on_existing"})
    if "connections" not in body:
        raise InvalidRequest('send {"connections": {"conn_id": "uri" or {fields}, ...}}')
    result = await varconn(request).import_connections(actor, body["connections"], body.get("on_existing", "overwrite"))
    return JSONResponse(result)


@api
async def get_connection(request: Request, actor: Actor) -> Response:
    return JSONResponse(await varconn(request).get_connection(actor, request.path_params["conn_id"]))


@api
async def put_connection(request: Request, actor: Actor) -> Response:
    body = await json_body(request, CONN_FIELDS | {"uri"})
    result = await varconn(request).set_connection(actor, request.path_params["conn_id"], body)
    return JSONResponse(result, status_code=201 if result["created"] else 200)


@api
async def delete_connection(request: Request, actor: Actor) -> Response:
    await varconn(request).delete_connection(actor, request.path_params["conn_id"])
    return Response(status_code=204)


# --- pages ---------------------------------------------------------------------------------


def _back(path: str, message: str) -> Response:
    return RedirectResponse(f"{path}?{urlencode({'msg': message})}", status_code=303)


def _error(request: Request, e: GatewayError) -> Response:
    return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)


@page
async def variables_page(request: Request, actor: Actor) -> Response:
    variables = await varconn(request).list_variables(actor)
    return render(request, "variables.html", {"variables": variables, "msg": request.query_params.get("msg", "")})


@page
async def variables_post(request: Request, actor: Actor) -> Response:
    """Sets a variable (key, value, description), or deletes it (delete=true)."""
    f = request.state.form
    key = f.get("key", "")
    try:
        if f.get("delete") == "true":
            await varconn(request).delete_variable(actor, key)
            return _back("/admin/variables", f"deleted variable {key}")
        description = f.get("description") if "description" in f else None
        await varconn(request).set_variable(actor, key, f.get("value", ""), description)
    except GatewayError as e:
        return _error(request, e)
    return _back("/admin/variables", f"saved variable {key}")


@page
async def connections_page(request: Request, actor: Actor) -> Response:
    connections = await varconn(request).list_connections(actor)
    return render(request, "connections.html", {"connections": connections, "msg": request.query_params.get("msg", "")})


@page
async def connections_post(request: Request, actor: Actor) -> Response:
    """Sets a connection from a URI or from its fields, or deletes it (delete=true)."""
    f = request.state.form
    conn_id = f.get("conn_id", "")
    try:
        if f.get("delete") == "true":
            await varconn(request).delete_connection(actor, conn_id)
            return _back("/admin/connections", f"deleted connection {conn_id}")
        body: dict[str, Any]
        if f.get("uri"):
            body = {"uri": f["uri"], "description": f.get("description", "")}
        else:
            body = {k: f[k] for k in ("conn_type", "description", "host", "schema", "login", "extra") if f.get(k)}
            if f.get("password"):
                body["password"] = f["password"]
            if f.get("port"):
                if not f["port"].isdigit():
                    raise InvalidRequest("port must be a whole number")
                body["port"] = int(f["port"])
        await varconn(request).set_connection(actor, conn_id, body)
    except GatewayError as e:
        return _error(request, e)
    return _back("/admin/connections", f"saved connection {conn_id}")


def routes(api_prefix: str) -> list[Route]:
    a = api_prefix
    return [
        Route(f"{a}/variables", list_variables, methods=["GET"]),
        Route(f"{a}/variables", import_variables, methods=["POST"]),
        Route(f"{a}/variables/{{key}}", get_variable, methods=["GET"]),
        Route(f"{a}/variables/{{key}}", put_variable, methods=["PUT"]),
        Route(f"{a}/variables/{{key}}", delete_variable, methods=["DELETE"]),
        Route(f"{a}/connections", list_connections, methods=["GET"]),
        Route(f"{a}/connections", import_connections, methods=["POST"]),
        Route(f"{a}/connections/{{conn_id}}", get_connection, methods=["GET"]),
        Route(f"{a}/connections/{{conn_id}}", put_connection, methods=["PUT"]),
        Route(f"{a}/connections/{{conn_id}}", delete_connection, methods=["DELETE"]),
        Route("/admin/variables", variables_page, methods=["GET"]),
        Route("/admin/variables", variables_post, methods=["POST"]),
        Route("/admin/connections", connections_page, methods=["GET"]),
        Route("/admin/connections", connections_post, methods=["POST"]),
    ]
