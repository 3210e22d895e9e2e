"""The gateway's HTTP side: REST API under /api/v1 and the web UI. Thin: parse, call the engine, answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from gateway.engine import Gateway, to_json
from gateway.errors import GatewayError, InvalidRequest

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STATE_COLORS = {
    "success": "#2e9e44",
    "failed": "#d23c3c",
    "upstream_failed": "#f0a040",
    "up_for_retry": "#f5d142",
    "running": "#7bd34a",
    "queued": "#8d8d8d",
    "scheduled": "#c8b6e2",
    "skipped": "#f0a0d0",
    None: "#e6e6e6",
}


def _int(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter {name} must be an integer, not {raw!r}") from None


def _gw(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _user(request: Request) -> str:
    return request.headers.get("x-spinner-user", "anonymous")


# --- REST --------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def list_dags(request: Request) -> Response:
    dags, total = await _gw(request).list_dags(_int(request, "limit", 100) or 0, _int(request, "offset", 0) or 0)
    return JSONResponse({"dags": to_json(dags), "total": total})


async def get_dag(request: Request) -> Response:
    return JSONResponse(to_json(await _gw(request).get_dag(request.path_params["dag_id"])))


async def list_runs(request: Request) -> Response:
    runs = await _gw(request).list_runs(request.path_params["dag_id"], _int(request, "limit", 25) or 0)
    return JSONResponse({"runs": to_json(runs)})


async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    raw = await request.body()
    try:
        body: Any = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise InvalidRequest(f"unknown field(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return body


async def trigger(request: Request) -> Response:
    body = await _body(request, {"conf", "run_id"})
    run = await _gw(request).trigger(
        request.path_params["dag_id"], body.get("conf"), body.get("run_id"), _user(request)
    )
    return JSONResponse(to_json(run), status_code=201)


SELECTION = {"task_ids", "include_upstream", "include_downstream"}


async def clear(request: Request) -> Response:
    p = request.path_params
    body = await _body(request, SELECTION | {"only_failed"})
    only_failed = body.get("only_failed", False)
    if not isinstance(only_failed, bool):
        raise InvalidRequest("only_failed must be true or false")
    cleared = await _gw(request).clear(p["dag_id"], p["run_id"], body, only_failed, _user(request))
    return JSONResponse({"task_ids": cleared})


async def mark(request: Request) -> Response:
    p = request.path_params
    body = await _body(request, SELECTION | {"state"})
    marked = await _gw(request).mark(p["dag_id"], p["run_id"], body, body.get("state"), _user(request))
    return JSONResponse({"task_ids": marked})


async def patch_dag(request: Request) -> Response:
    body = await _body(request, {"is_paused"})
    if "is_paused" not in body:
        raise InvalidRequest('nothing to change: send {"is_paused": true|false}')
    dag = await _gw(request).set_paused(request.path_params["dag_id"], body["is_paused"], _user(request))
    return JSONResponse(to_json(dag))


async def backfill(request: Request) -> Response:
    body = await _body(request, {"start", "end", "conf"})
    result = await _gw(request).backfill(
        request.path_params["dag_id"], body.get("start"), body.get("end"), body.get("conf"), _user(request)
    )
    return JSONResponse(result, status_code=201)


async def list_pools(request: Request) -> Response:
    return JSONResponse({"pools": await _gw(request).pools()})


async def put_pool(request: Request) -> Response:
    body = await _body(request, {"slots", "description"})
    pool = await _gw(request).set_pool(request.path_params["name"], body.get("slots"), body.get("description"))
    return JSONResponse(pool)


async def get_run(request: Request) -> Response:
    p = request.path_params
    return JSONResponse(to_json(await _gw(request).get_run(p["dag_id"], p["run_id"])))


async def list_tasks(request: Request) -> Response:
    p = request.path_params
    return JSONResponse({"task_instances": to_json(await _gw(request).task_instances(p["dag_id"], p["run_id"]))})


async def task_log(request: Request) -> Response:
    p = request.path_params
    chunk = await _gw(request).task_log(
        p["dag_id"], p["run_id"], p["task_id"], _int(request, "try_number", None), _int(request, "offset", 0) or 0
    )
    return JSONResponse(to_json(chunk))


async def import_errors(request: Request) -> Response:
    return JSONResponse({"import_errors": await _gw(request).import_errors()})


# --- web UI ------------------------------------------------------------------------------


async def index(request: Request) -> Response:
    gw = _gw(request)
    dags, total = await gw.list_dags(limit=500)
    runs = await gw.recent_runs([d.dag_id for d in dags], per_dag=12)
    return TEMPLATES.TemplateResponse(
        request,
        "index.html",
        {
            "dags": dags,
            "total": total,
            "runs": runs,
            "errors": await gw.import_errors(),
            "colors": STATE_COLORS,
            "snapshot": await gw.snapshot(),
        },
    )


async def dag_page(request: Request) -> Response:
    gw = _gw(request)
    grid = await gw.grid(request.path_params["dag_id"])
    return TEMPLATES.TemplateResponse(
        request,
        "dag.html",
        {"grid": grid, "dag": grid.dag, "code": await gw.dag_code(grid.dag.dag_id), "colors": STATE_COLORS},
    )


async def log_page(request: Request) -> Response:
    p = request.path_params
    gw = _gw(request)
    tis = {t.task_id: t for t in await gw.task_instances(p["dag_id"], p["run_id"])}
    ti = tis.get(p["task_id"])
    chunk = None
    if ti is not None and ti.try_number > 0:
        chunk = await gw.task_log(p["dag_id"], p["run_id"], p["task_id"], _int(request, "try_number", None), 0)
    return TEMPLATES.TemplateResponse(
        request,
        "log.html",
        {"p": p, "ti": ti, "chunk": chunk, "colors": STATE_COLORS},
    )


# --- errors ------------------------------------------------------------------------------


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if _wants_json(request):
        return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=exc.http_status)
    return TEMPLATES.TemplateResponse(
        request, "error.html", {"status": exc.http_status, "message": str(exc)}, status_code=exc.http_status
    )


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else f"no such page or endpoint: {request.url.path}"
    if _wants_json(request):
        code = "not_found" if exc.status_code == 404 else "http_error"
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=exc.status_code)
    return TEMPLATES.TemplateResponse(
        request, "error.html", {"status": exc.status_code, "message": message}, status_code=exc.status_code
    )


def create_app(gateway: Gateway) -> Starlette:
    api = "/api/v1"
    routes = [
        Route(f"{api}/health", health),
        Route(f"{api}/dags", list_dags),
        Route(f"{api}/dags/{{dag_id}}", get_dag, methods=["GET"]),
        Route(f"{api}/dags/{{dag_id}}", patch_dag, methods=["PATCH"]),
        Route(f"{api}/dags/{{dag_id}}/backfill", backfill, methods=["POST"]),
        Route(f"{api}/dags/{{dag_id}}/runs/{{run_id}}/clear", clear, methods=["POST"]),
        Route(f"{api}/dags/{{dag_id}}/runs/{{run_id}}/mark", mark, methods=["POST"]),
        Route(f"{api}/dags/{{dag_id}}/runs", list_runs, methods=["GET"]),
        Route(f"{api}/dags/{{dag_id}}/runs", trigger, methods=["POST"]),
        Route(f"{api}/dags/{{dag_id}}/runs/{{run_id}}", get_run),
        Route(f"{api}/dags/{{dag_id}}/runs/{{run_id}}/tasks", list_tasks),
        Route(f"{api}/dags/{{dag_id}}/runs/{{run_id}}/tasks/{{task_id}}/logs", task_log),
        Route(f"{api}/import-errors", import_errors),
        Route(f"{api}/pools", list_pools),
        Route(f"{api}/pools/{{name}}", put_pool, methods=["PUT"]),
        Route("/", index),
        Route("/dags/{dag_id}", dag_page),
        Route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log", log_page),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={GatewayError: on_gateway_error, HTTPException: on_http_error},
    )
    app.state.gateway = gateway
    return app
