"""The REST API under /api/v1. Thin: parse, call the engine, answer JSON. The OpenAPI document is gateway/openapi.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway import jsonio
from gateway.auth import Actor
from gateway.errors import GatewayError, InvalidRequest
from gateway.jsonio import JSONResponse
from gateway.logs import LogFollow
from gateway.openapi import document
from gateway.queries import AuditFilter, DagFilter
from gateway.templates_info import rendered_fields
from gateway.views import MAX_OFFSET, to_json
from gateway.web import (
    admin,
    api,
    bool_param,
    gw,
    int_param,
    json_body,
    map_index_param,
    optional_map_index,
    remote_addr,
    str_param,
)

SELECTION = {"task_ids", "include_upstream", "include_downstream", "map_indexes"}
SSE_KEEPALIVE = 15.0  # seconds of silence before a log stream sends a comment line
SSE_RETRY_MS = 2000  # how long a browser waits before reconnecting a broken log stream


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> Response:
    return JSONResponse(document())


async def issue_token(request: Request) -> Response:
    """Password in, API token out: how `spinner login` gets its token."""
    body = await json_body(request, {"username", "password", "name", "expires_in_days"})
    principal = await admin(request).login(body.get("username"), body.get("password"), remote_addr(request))
    actor = Actor(principal, remote_addr(request))
    token = await admin(request).create_token(
        actor, principal.username, body.get("name", "cli"), body.get("expires_in_days")
    )
    return JSONResponse(token, status_code=201)


def dag_filter(request: Request) -> DagFilter:
    return DagFilter(
        search=str_param(request, "search"),
        tier=int_param(request, "tier", None),
        partition=str_param(request, "partition"),
        tag=str_param(request, "tag"),
        owner=str_param(request, "owner"),
        paused=bool_param(request, "paused"),
        failing=bool_param(request, "failing"),
    )


@api
async def me(request: Request, actor: Actor) -> Response:
    p = actor.principal
    return JSONResponse({"username": p.username, "roles": p.roles, "is_admin": p.is_admin, "via": p.via})


@api
async def list_dags(request: Request, actor: Actor) -> Response:
    limit, offset = int_param(request, "limit", 100) or 0, int_param(request, "offset", 0) or 0
    dags, total = await gw(request).list_dags(actor, limit, offset, dag_filter(request))
    return JSONResponse({"dags": to_json(dags), "total": total})


@api
async def get_dag(request: Request, actor: Actor) -> Response:
    dag_id = request.path_params["dag_id"]
    dag = to_json(await gw(request).get_dag(actor, dag_id))
    dag.update(await gw(request).dag_details(actor, dag_id))
    return JSONResponse(dag)


@api
async def dag_tasks(request: Request, actor: Actor) -> Response:
    return JSONResponse({"tasks": to_json(await gw(request).graph(actor, request.path_params["dag_id"]))})


@api
async def list_runs(request: Request, actor: Actor) -> Response:
    runs = await gw(request).list_runs(actor, request.path_params["dag_id"], int_param(request, "limit", 25) or 0)
    return JSONResponse({"runs": to_json(runs)})


@api
async def trigger(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"conf", "run_id"})
    run = await gw(request).trigger(actor, request.path_params["dag_id"], body.get("conf"), body.get("run_id"))
    return JSONResponse(to_json(run), status_code=201)


@api
async def clear(request: Request, actor: Actor) -> Response:
    p = request.path_params
    body = await json_body(request, SELECTION | {"only_failed"})
    only_failed = body.get("only_failed", False)
    if not isinstance(only_failed, bool):
        raise InvalidRequest("only_failed must be true or false")
    cleared = await gw(request).clear(actor, p["dag_id"], p["run_id"], body, only_failed)
    return JSONResponse({"task_ids": cleared})


@api
async def mark(request: Request, actor: Actor) -> Response:
    p = request.path_params
    body = await json_body(request, SELECTION | {"state"})
    marked = await gw(request).mark(actor, p["dag_id"], p["run_id"], body, body.get("state"))
    return JSONResponse({"task_ids": marked})


@api
async def patch_dag(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"is_paused"})
    if "is_paused" not in body:
        raise InvalidRequest('nothing to change: send {"is_paused": true|false}')
    dag = await gw(request).set_paused(actor, request.path_params["dag_id"], body["is_paused"])
    return JSONResponse(to_json(dag))


@api
async def refresh(request: Request, actor: Actor) -> Response:
    await json_body(request, set())
    return JSONResponse(await gw(request).refresh(actor, request.path_params["dag_id"]))


@api
async def backfill(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"start", "end", "conf"})
    result = await gw(request).backfill(
        actor, request.path_params["dag_id"], body.get("start"), body.get("end"), body.get("conf")
    )
    return JSONResponse(result, status_code=201)


@api
async def list_pools(request: Request, actor: Actor) -> Response:
    return JSONResponse({"pools": await gw(request).pools()})


@api
async def put_pool(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"slots", "description"})
    pool = await gw(request).set_pool(actor, request.path_params["name"], body.get("slots"), body.get("description"))
    return JSONResponse(pool)


@api
async def get_run(request: Request, actor: Actor) -> Response:
    p = request.path_params
    return JSONResponse(to_json(await gw(request).get_run(actor, p["dag_id"], p["run_id"])))


@api
async def run_callbacks(request: Request, actor: Actor) -> Response:
    p = request.path_params
    found = await gw(request).run_callbacks(actor, p["dag_id"], p["run_id"])
    return JSONResponse({"callbacks": to_json(found.callbacks), "deadline_missed": to_json(found.deadline_missed)})


@api
async def list_tasks(request: Request, actor: Actor) -> Response:
    p = request.path_params
    tis = await gw(request).task_instances(actor, p["dag_id"], p["run_id"])
    return JSONResponse({"task_instances": to_json(tis)})


@api
async def task_tries(request: Request, actor: Actor) -> Response:
    p = request.path_params
    tries = await gw(request).tries(actor, p["dag_id"], p["run_id"], p["task_id"], map_index_param(request))
    return JSONResponse({"tries": to_json(tries)})


@api
async def task_rendered(request: Request, actor: Actor) -> Response:
    p = request.path_params
    info = await rendered_fields(
        gw(request), actor, p["dag_id"], p["run_id"], p["task_id"], int_param(request, "try_number", None),
        map_index_param(request),
    )  # fmt: skip
    return JSONResponse(to_json(info))


@api
async def task_xcoms(request: Request, actor: Actor) -> Response:
    p = request.path_params
    # No map_index: every instance's XComs (each says its map_index).
    xcoms = await gw(request).xcoms(actor, p["dag_id"], p["run_id"], p["task_id"], optional_map_index(request))
    return JSONResponse({"xcoms": to_json(xcoms)})


@api
async def task_log(request: Request, actor: Actor) -> Response:
    p = request.path_params
    chunk = await gw(request).task_log(
        actor,
        p["dag_id"],
        p["run_id"],
        p["task_id"],
        int_param(request, "try_number", None),
        int_param(request, "offset", 0) or 0,
        map_index_param(request),
    )
    return JSONResponse(chunk.to_api())


@api
async def task_log_stream(request: Request, actor: Actor) -> Response:
    """The log as Server-Sent Events, from `offset` (or the Last-Event-ID a reconnecting browser sends) on.

    Each event's data is a chunk (LogInfo.to_event) and its id the offset to go on from; the stream
    ends after the complete chunk. A failure once it has started is an `error` event, then the end.
    Everything refused before it starts (no such try, not allowed) is the usual JSON error.
    """
    p = request.path_params
    offset = int_param(request, "offset", 0) or 0
    last_event_id = request.headers.get("last-event-id", "")
    if last_event_id.isascii() and last_event_id.isdigit():  # anything else is not an id this stream sent
        if len(last_event_id) > len(str(MAX_OFFSET)) or int(last_event_id) > MAX_OFFSET:
            raise InvalidRequest(f"the Last-Event-ID header must be a line offset from 0 to {MAX_OFFSET}")
        offset = int(last_event_id)
    follow = await gw(request).follow_log(
        actor, p["dag_id"], p["run_id"], p["task_id"], int_param(request, "try_number", None), offset,
        map_index_param(request),
    )  # fmt: skip
    return StreamingResponse(
        _events(follow),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        background=BackgroundTask(follow.close),  # also when the client left before the first event was sent
    )


async def _events(follow: LogFollow) -> AsyncIterator[str]:
    yield f"retry: {SSE_RETRY_MS}\n\n"
    try:
        async for chunk in follow.chunks(idle=SSE_KEEPALIVE):
            if chunk is None:
                yield ": still following\n\n"  # keeps proxies from closing a quiet stream
            else:
                yield f"id: {chunk.next_offset}\ndata: {jsonio.dumps(chunk.to_event())}\n\n"
    except GatewayError as e:
        yield f"event: error\ndata: {jsonio.dumps({'error': {'code': e.code, 'message': str(e)}})}\n\n"


@api
async def import_errors(request: Request, actor: Actor) -> Response:
    return JSONResponse({"import_errors": await gw(request).import_errors(actor)})


@api
async def audit(request: Request, actor: Actor) -> Response:
    flt = AuditFilter(
        dag_id=str_param(request, "dag_id"),
        username=str_param(request, "username"),
        action=str_param(request, "action"),
        outcome=str_param(request, "outcome"),
    )
    limit, offset = int_param(request, "limit", 100) or 0, int_param(request, "offset", 0) or 0
    entries, total = await gw(request).audit.entries(actor, flt, limit, offset)
    return JSONResponse({"entries": to_json(entries), "total": total})


# --- users and roles -----------------------------------------------------------------------


@api
async def list_users(request: Request, actor: Actor) -> Response:
    return JSONResponse({"users": await admin(request).users(actor)})


@api
async def create_user(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"username", "password", "email", "roles"})
    return JSONResponse(await admin(request).create_user(actor, body), status_code=201)


@api
async def patch_user(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"password", "roles", "active"})
    return JSONResponse(await admin(request).update_user(actor, request.path_params["username"], body))


@api
async def delete_user(request: Request, actor: Actor) -> Response:
    await admin(request).delete_user(actor, request.path_params["username"])
    return Response(status_code=204)


@api
async def create_token(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"name", "expires_in_days"})
    token = await admin(request).create_token(
        actor, request.path_params["username"], body.get("name", "api"), body.get("expires_in_days")
    )
    return JSONResponse(token, status_code=201)


@api
async def list_roles(request: Request, actor: Actor) -> Response:
    return JSONResponse({"roles": await admin(request).roles(actor)})


@api
async def put_role(request: Request, actor: Actor) -> Response:
    body = await json_body(request, {"permissions"})
    return JSONResponse(await admin(request).put_role(actor, request.path_params["name"], body))


@api
async def delete_role(request: Request, actor: Actor) -> Response:
    await admin(request).delete_role(actor, request.path_params["name"])
    return Response(status_code=204)
