"""The web UI: server-rendered pages and HTML form posts (each with the session's CSRF token). No outside network."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway import triggered
from gateway.api import dag_filter
from gateway.auth import CSRF_FIELD, Actor, Authenticator
from gateway.errors import GatewayError, InvalidRequest, LogMissing, TooManyAttempts, Unauthenticated
from gateway.mapped import not_this_instance, parse_map_indexes
from gateway.mapped_pages import mapped_task_page
from gateway.queries import AuditFilter
from gateway.templates_pages import conf_from_form, trigger_fields
from gateway.views import LogInfo, MappedSummary, TaskInstanceInfo, TaskNode, split_mapped
from gateway.web import (
    STATE_COLORS,
    admin,
    audit_csrf_refusal,
    authenticator,
    browser_session,
    form,
    gw,
    int_param,
    map_index_param,
    page,
    remote_addr,
    render,
    safe_next,
    set_session,
    str_param,
)
from spinner.mapping import NO_MAP_INDEX
from spinner.tasklog import READINESS_FAILED, READINESS_PASSED, SECTION_START, is_marker

PER_PAGE = 50


def _redirect(path: str, message: str = "") -> Response:
    if message:
        path += ("&" if "?" in path else "?") + urlencode({"msg": message})
    return RedirectResponse(path, status_code=303)


def _q(value: str) -> str:
    return quote(value, safe="")


# --- login ---------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    return render(request, "login.html", {"next": safe_next(request.query_params.get("next")), "error": ""})


async def login_post(request: Request) -> Response:
    fields = await form(request)
    nxt = safe_next(fields.get("next"))
    if not Authenticator.csrf_ok(browser_session(request), fields.get(CSRF_FIELD)):
        await audit_csrf_refusal(request, fields.get("username", "")[:200])
        return render(request, "login.html", {"next": nxt, "error": "Your session expired; try again."}, 403)
    try:
        username, password = fields.get("username", ""), fields.get("password", "")
        principal = await admin(request).login(username, password, remote_addr(request))
    except (Unauthenticated, InvalidRequest, TooManyAttempts) as e:
        status = e.http_status if isinstance(e, TooManyAttempts) else 401
        return render(request, "login.html", {"next": nxt, "error": str(e)}, status)
    response = RedirectResponse(nxt, status_code=303)
    # A new CSRF token with the new identity: a token seen before login is worth nothing after.
    set_session(request, response, Authenticator.new_session(principal))
    return response


@page
async def logout(request: Request, actor: Actor) -> Response:
    """Ends every session of the user, on every browser, not only this one's."""
    await authenticator(request).end_sessions(actor.principal)
    await gw(request).audit.record(actor, "logout", "ok", details={"sessions": "all ended"})
    response = RedirectResponse("/login", status_code=303)
    set_session(request, response, Authenticator.new_session(None))
    return response


# --- DAG list ------------------------------------------------------------------------------


@page
async def index(request: Request, actor: Actor) -> Response:
    g = gw(request)
    flt = dag_filter(request)
    page_no = max(int_param(request, "page", 1) or 1, 1)
    per_page = int_param(request, "per_page", PER_PAGE) or PER_PAGE
    if not 1 <= per_page <= 500:
        raise InvalidRequest("per_page must be between 1 and 500")
    dags, total = await g.list_dags(actor, per_page, (page_no - 1) * per_page, flt)
    runs = await g.recent_runs(actor, [d.dag_id for d in dags], per_dag=12)
    pages = max(math.ceil(total / per_page), 1)
    params = {k: v for k, v in request.query_params.items() if k not in ("page", "msg")}

    def page_url(n: int) -> str:
        return "/?" + urlencode({**params, "page": n})

    return render(
        request,
        "index.html",
        {
            "dags": dags, "total": total, "runs": runs, "errors": await g.import_errors(actor), "flt": flt,
            "facets": await g.dag_facets(actor), "page": page_no, "pages": pages, "page_url": page_url,
            "msg": request.query_params.get("msg", ""), "snapshot": await g.snapshot(),
        },
    )  # fmt: skip


# --- DAG page ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    task_id: str
    operator: str
    state: str | None
    x: int
    y: int
    count: int | None = None  # a mapped task's instances in the run

    @property
    def label(self) -> str:
        return self.task_id[:22] if self.count is None else f"{self.task_id[:17]} [{self.count}]"


NODE_W, NODE_H, COL_W, ROW_H = 160, 34, 200, 50


Edge = tuple[int, int, int, int]


def layout(
    nodes: list[TaskNode], states: dict[str, str | None], counts: dict[str, int] | None = None
) -> tuple[list[Node], list[Edge], int, int]:
    """Columns by longest path from a root, so every edge goes left to right. `counts`: mapped tasks' instances."""
    depth: dict[str, int] = {}
    for n in nodes:  # upstream first
        depth[n.task_id] = max((depth.get(u, 0) + 1 for u in n.upstream if u in depth), default=0)
    rows: dict[int, int] = {}
    placed: dict[str, Node] = {}
    for n in nodes:
        col = depth[n.task_id]
        row = rows.get(col, 0)
        rows[col] = row + 1
        placed[n.task_id] = Node(
            n.task_id, n.operator, states.get(n.task_id), 10 + col * COL_W, 10 + row * ROW_H,
            (counts or {}).get(n.task_id),
        )  # fmt: skip
    edges = [
        (placed[u].x + NODE_W, placed[u].y + NODE_H // 2, placed[n.task_id].x, placed[n.task_id].y + NODE_H // 2)
        for n in nodes
        for u in n.upstream
        if u in placed
    ]
    width = 20 + (max(depth.values(), default=0) + 1) * COL_W
    height = 20 + max(rows.values(), default=1) * ROW_H
    return list(placed.values()), edges, width, height


@dataclass(frozen=True)
class Bar:
    task_id: str
    state: str | None
    x: float
    width: float
    label: str
    name: str = ""  # what the row says: the task id, and a mapped task's instance count


GANTT_W = 640.0
MAPPED_BAR_W = 24.0  # a mapped task's grid cell: the bar of its instances' states


class Spanned(Protocol):
    """A task instance, or a mapped task's instances together (gateway/views.py MappedSummary)."""

    @property
    def task_id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def state(self) -> str | None: ...
    @property
    def start_date(self) -> str | None: ...
    @property
    def end_date(self) -> str | None: ...


def gantt(tis: list[Spanned], now: dt.datetime) -> tuple[list[Bar], float]:
    """Bars from each task's start to its end (or now while it runs), on one time scale; a mapped
    task's bar goes from its first instance's start to its last one's end."""
    spans = []
    for t in tis:
        if not t.start_date:
            continue
        start = dt.datetime.fromisoformat(t.start_date)
        end = dt.datetime.fromisoformat(t.end_date) if t.end_date else now
        spans.append((t, start, max(end, start)))
    if not spans:
        return [], 0.0
    t0 = min(s for _, s, _ in spans)
    total = max((e - t0).total_seconds() for _, _, e in spans) or 1.0
    scale = GANTT_W / total
    bars = [
        Bar(
            t.task_id,
            t.state,
            (s - t0).total_seconds() * scale,
            max((e - s).total_seconds() * scale, 2.0),
            f"{t.label}: {t.state or 'none'}, {(e - s).total_seconds():.1f} s",
            t.label,
        )
        for t, s, e in sorted(spans, key=lambda x: x[1])
    ]
    return bars, total


@page
async def dag_page(request: Request, actor: Actor) -> Response:
    g = gw(request)
    dag_id = request.path_params["dag_id"]
    view = await g.dag_view(actor, dag_id, with_code=True)
    grid = view.grid
    selected = request.query_params.get("run_id") or (grid.runs[-1].run_id if grid.runs else None)
    singles: dict[str, TaskInstanceInfo] = {}
    summaries: dict[str, MappedSummary] = {}
    if selected and any(r.run_id == selected for r in grid.runs):
        singles, summaries = grid.cells.get(selected, {}), grid.mapped.get(selected, {})
    elif selected:
        singles, summaries = split_mapped(await g.task_instances(actor, dag_id, selected))
    callbacks = await g.run_callbacks(actor, dag_id, selected) if selected else None
    states = {t: ti.state for t, ti in singles.items()} | {t: m.state for t, m in summaries.items()}
    nodes, edges, gw_, gh = layout(view.nodes, states, {t: m.count for t, m in summaries.items()})
    trigger = await triggered.triggering_task(g.readers, actor, dag_id, selected) if selected else None
    spans: list[Spanned] = [*singles.values(), *summaries.values()]
    bars, span = gantt(spans, request.app.state.clock())
    return render(
        request,
        "dag.html",
        {
            "grid": grid, "dag": grid.dag, "code": view.code, "code_refused": view.code_refused,
            "details": view.details, "selected": selected, "nodes": nodes, "edges": edges,
            "graph_w": gw_, "graph_h": gh, "node_w": NODE_W, "node_h": NODE_H, "bars": bars, "span": span,
            "gantt_w": GANTT_W, "msg": request.query_params.get("msg", ""), "mapped_bar_w": MAPPED_BAR_W,
            "trigger_fields": trigger_fields(view.details.get("params", [])),
            "trigger": trigger,
            "run_callbacks": callbacks,
        },
    )  # fmt: skip


async def _action(request: Request, dag_id: str, call: Any, done: str) -> Response:
    back = f"/dags/{_q(dag_id)}"
    try:
        result = await call
    except GatewayError as e:
        return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)
    return _redirect(back, done.format(result=result))


@page
async def trigger_post(request: Request, actor: Actor) -> Response:
    dag_id = request.path_params["dag_id"]
    try:
        conf = conf_from_form(request.state.form)  # the trigger form's params (gateway/templates_pages.py)
    except GatewayError as e:
        return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)
    call = gw(request).trigger(actor, dag_id, conf, None)
    try:
        run = await call
    except GatewayError as e:
        return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)
    return _redirect(f"/dags/{_q(dag_id)}?run_id={_q(run.run_id)}", f"triggered run {run.run_id}")


@page
async def pause_post(request: Request, actor: Actor) -> Response:
    dag_id = request.path_params["dag_id"]
    paused = request.state.form.get("paused") == "true"
    return await _action(
        request, dag_id, gw(request).set_paused(actor, dag_id, paused), "paused" if paused else "unpaused"
    )


@page
async def refresh_post(request: Request, actor: Actor) -> Response:
    dag_id = request.path_params["dag_id"]
    return await _action(request, dag_id, gw(request).refresh(actor, dag_id), "access control refreshed")


@page
async def run_action_post(request: Request, actor: Actor) -> Response:
    p = request.path_params
    f = request.state.form
    sel: dict[str, Any] = {"task_ids": [f["task_id"]] if f.get("task_id") else []}
    sel["include_downstream"] = f.get("downstream") == "true"
    if f.get("map_index", "") != "":  # the page of one instance of a mapped task
        try:
            sel["map_indexes"] = parse_map_indexes([int(f["map_index"])])
        except ValueError:
            raise InvalidRequest(f"map_index must be a whole number, not {f['map_index']!r}") from None
    if p["action"] == "clear":
        call = gw(request).clear(actor, p["dag_id"], p["run_id"], sel, f.get("only_failed") == "true")
    elif p["action"] == "mark":
        call = gw(request).mark(actor, p["dag_id"], p["run_id"], sel, f.get("state"))
    else:
        raise InvalidRequest(f"unknown action {p['action']!r}")
    return await _action(request, p["dag_id"], call, p["action"] + " done: {result}")


@page
async def log_page(request: Request, actor: Actor) -> Response:
    """A task instance's page (`?map_index=N` for a mapped task's instance): its state, tries, XComs, and
    the first chunk of its log rendered here (enough without JavaScript); the page's script follows the rest.
    A mapped task without map_index: the list of its instances (gateway/mapped_pages.py)."""
    p = request.path_params
    g = gw(request)
    map_index = map_index_param(request)
    mine = [t for t in await g.task_instances(actor, p["dag_id"], p["run_id"]) if t.task_id == p["task_id"]]
    instances = [t for t in mine if t.map_index != NO_MAP_INDEX]
    can_edit = actor.principal.can_edit(p["dag_id"])
    if map_index == NO_MAP_INDEX and instances:
        return mapped_task_page(request, p, MappedSummary.of(instances), can_edit)
    ti = next((t for t in mine if t.map_index == map_index), None)
    if ti is None and map_index != NO_MAP_INDEX:
        refusal = not_this_instance(p["run_id"], p["task_id"], map_index, sorted(t.map_index for t in mine))
        if refusal is not None:
            raise refusal
    tries = await g.tries(actor, p["dag_id"], p["run_id"], p["task_id"], map_index)
    context: dict[str, Any] = {"p": p, "ti": ti, "tries": tries, "can_edit": can_edit, "map_index": map_index}
    context["instance_q"] = f"map_index={map_index}&" if map_index != NO_MAP_INDEX else ""
    xcoms = await g.xcoms(actor, p["dag_id"], p["run_id"], p["task_id"], map_index) if ti is not None else []
    context["xcoms"] = xcoms
    context["triggered"] = await triggered.triggered_runs(g.readers, actor, p["dag_id"], p["run_id"], p["task_id"])
    if ti is not None and ti.try_number > 0:
        asked = int_param(request, "try_number", None)
        number = ti.try_number if asked is None else asked
        chunk = None
        try:
            chunk = await g.task_log(actor, p["dag_id"], p["run_id"], p["task_id"], number, 0, map_index)
        except LogMissing:  # started, nothing written yet: the page follows it from the first line
            pass
        context["log"] = _log_view(p, chunk, number, map_index)
        context["state_colors"] = {k: v for k, v in STATE_COLORS.items() if k is not None}
    return render(request, "log.html", context)


def _log_view(p: dict[str, Any], chunk: LogInfo | None, try_number: int, map_index: int) -> dict[str, Any]:
    """What log.html shows of a chunk: its lines by section without the runner's markers, and where to follow on."""
    base = f"/api/v1/dags/{_q(p['dag_id'])}/runs/{_q(p['run_id'])}/tasks"
    lines = [line for line in chunk.lines if not is_marker(line.text)] if chunk else []
    readiness_lines = [line.text for line in lines if line.section == "readiness"]
    query: dict[str, int] = {"try_number": try_number}
    if map_index != NO_MAP_INDEX:  # an unmapped task's stream URL stays as it was
        query["map_index"] = map_index
    return {
        "try_number": try_number,
        "source": chunk.source if chunk else "",
        "fallback_reason": chunk.fallback_reason if chunk else "",
        "complete": chunk.complete if chunk else False,
        "readiness": chunk.readiness if chunk else "",
        "readiness_lines": readiness_lines,
        "task_lines": [line.text for line in lines if line.section != "readiness"],
        "next_offset": chunk.next_offset if chunk else 0,
        "stream": f"{base}/{_q(p['task_id'])}/logs/stream?{urlencode(query)}&",
        "tasks": base,
        "markers": {"prefix": SECTION_START, "exact": [READINESS_PASSED, READINESS_FAILED]},
    }


# --- audit and admin -----------------------------------------------------------------------


@page
async def audit_page(request: Request, actor: Actor) -> Response:
    flt = AuditFilter(
        dag_id=str_param(request, "dag_id"),
        username=str_param(request, "username"),
        action=str_param(request, "action"),
        outcome=str_param(request, "outcome"),
    )
    page_no = max(int_param(request, "page", 1) or 1, 1)
    entries, total = await gw(request).audit.entries(actor, flt, PER_PAGE, (page_no - 1) * PER_PAGE)
    params = {k: v for k, v in request.query_params.items() if k != "page"}

    def page_url(n: int) -> str:
        return "/audit?" + urlencode({**params, "page": n})

    return render(
        request,
        "audit.html",
        {
            "entries": entries, "total": total, "flt": flt, "page": page_no,
            "pages": max(math.ceil(total / PER_PAGE), 1), "page_url": page_url,
        },
    )  # fmt: skip


@page
async def users_page(request: Request, actor: Actor) -> Response:
    a = admin(request)
    return render(
        request,
        "users.html",
        {"users": await a.users(actor), "roles": await a.roles(actor), "msg": request.query_params.get("msg", "")},
    )


def _role_list(value: str) -> list[str]:
    return [r.strip() for r in value.replace(",", " ").split() if r.strip()]


@page
async def users_post(request: Request, actor: Actor) -> Response:
    f = request.state.form
    body: dict[str, Any] = {"username": f.get("username", ""), "roles": _role_list(f.get("roles", ""))}
    if f.get("password"):
        body["password"] = f["password"]
    try:
        user = await admin(request).create_user(actor, body)
    except GatewayError as e:
        return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)
    shown = f" with password {user['password']} (shown once)" if "password" in user else ""
    return _redirect("/admin/users", f"created user {user['username']}{shown}")


@page
async def user_post(request: Request, actor: Actor) -> Response:
    username = request.path_params["username"]
    f = request.state.form
    try:
        if f.get("delete") == "true":
            await admin(request).delete_user(actor, username)
            return _redirect("/admin/users", f"deleted user {username}")
        body: dict[str, Any] = {"roles": _role_list(f.get("roles", "")), "active": f.get("active") == "true"}
        if f.get("password"):
            body["password"] = f["password"]
        await admin(request).update_user(actor, username, body)
    except GatewayError as e:
        return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)
    return _redirect("/admin/users", f"updated user {username}")


@page
async def roles_page(request: Request, actor: Actor) -> Response:
    return render(
        request, "roles.html", {"roles": await admin(request).roles(actor), "msg": request.query_params.get("msg", "")}
    )


@page
async def role_post(request: Request, actor: Actor) -> Response:
    """A role's DAG permissions as lines of '<action> <dag_id>' (dag_id * for every DAG)."""
    f = request.state.form
    name = request.path_params.get("name") or f.get("name", "")
    try:
        if f.get("delete") == "true":
            await admin(request).delete_role(actor, name)
            return _redirect("/admin/roles", f"deleted role {name}")
        perms = []
        for line in f.get("permissions", "").splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise InvalidRequest(f"each line is '<action> <dag_id>', not {line!r}")
            perms.append({"action": parts[0], "dag_id": parts[1]})
        await admin(request).put_role(actor, name, {"permissions": perms})
    except GatewayError as e:
        return render(request, "error.html", {"status": e.http_status, "message": str(e)}, e.http_status)
    return _redirect("/admin/roles", f"saved role {name}")
