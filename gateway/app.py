"""The gateway's HTTP side: the REST API under /api/v1 and the web UI, with one error mapping for both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway import api, pages, templates_pages, varconn_http
from gateway.admin import Admin
from gateway.auth import Authenticator
from gateway.engine import Gateway
from gateway.errors import GatewayError
from gateway.headers import SecurityHeaders
from gateway.jsonio import JSONResponse
from gateway.varconn import VarConn
from gateway.web import TEMPLATES
from spinner.fernet import SecretBox

API = "/api/v1"


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
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=exc.status_code, headers=exc.headers
        )
    return TEMPLATES.TemplateResponse(
        request, "error.html", {"status": exc.status_code, "message": message}, status_code=exc.status_code
    )


INTERNAL_ERROR_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>500 internal error</title></head>'
    '<body><h1>500</h1><p id="error-message">internal error: the gateway\'s log has the details</p>'
    '<p><a href="/">Back to the DAGs</a></p></body></html>'
)


async def on_unhandled_error(request: Request, exc: Exception) -> Response:
    """An exception nothing else handled: a plain 500, never a traceback.

    Starlette's ServerErrorMiddleware calls this, then raises the exception on to the server,
    which logs it. The page is fixed text, not a template: rendering must not fail again here.
    """
    if _wants_json(request):
        return JSONResponse({"error": {"code": "internal", "message": "internal error"}}, status_code=500)
    return HTMLResponse(INTERNAL_ERROR_PAGE, status_code=500)


class GatewayApp(Starlette):
    """Starlette with the security headers outermost, outside its ServerErrorMiddleware.

    A middleware given to Starlette runs inside ServerErrorMiddleware, so the 500 answer of an
    unhandled exception would go out without the headers; wrapping the whole stack gives them
    to every answer, error pages included.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def routes() -> list[Route]:
    a = API
    return [
        Route(f"{a}/health", api.health),
        Route(f"{a}/openapi.json", api.openapi),
        Route(f"{a}/auth/token", api.issue_token, methods=["POST"]),
        Route(f"{a}/me", api.me),
        Route(f"{a}/dags", api.list_dags),
        Route(f"{a}/dags/{{dag_id}}", api.get_dag, methods=["GET"]),
        Route(f"{a}/dags/{{dag_id}}", api.patch_dag, methods=["PATCH"]),
        Route(f"{a}/dags/{{dag_id}}/tasks", api.dag_tasks),
        Route(f"{a}/dags/{{dag_id}}/refresh", api.refresh, methods=["POST"]),
        Route(f"{a}/dags/{{dag_id}}/backfill", api.backfill, methods=["POST"]),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/clear", api.clear, methods=["POST"]),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/mark", api.mark, methods=["POST"]),
        Route(f"{a}/dags/{{dag_id}}/runs", api.list_runs, methods=["GET"]),
        Route(f"{a}/dags/{{dag_id}}/runs", api.trigger, methods=["POST"]),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}", api.get_run),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/tasks", api.list_tasks),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/callbacks", api.run_callbacks),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/tasks/{{task_id}}/tries", api.task_tries),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/tasks/{{task_id}}/xcom", api.task_xcoms),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/tasks/{{task_id}}/logs", api.task_log),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/tasks/{{task_id}}/rendered", api.task_rendered),
        Route(f"{a}/dags/{{dag_id}}/runs/{{run_id}}/tasks/{{task_id}}/logs/stream", api.task_log_stream),
        Route(f"{a}/import-errors", api.import_errors),
        Route(f"{a}/audit", api.audit),
        Route(f"{a}/pools", api.list_pools),
        Route(f"{a}/pools/{{name}}", api.put_pool, methods=["PUT"]),
        Route(f"{a}/users", api.list_users, methods=["GET"]),
        Route(f"{a}/users", api.create_user, methods=["POST"]),
        Route(f"{a}/users/{{username}}", api.patch_user, methods=["PATCH"]),
        Route(f"{a}/users/{{username}}", api.delete_user, methods=["DELETE"]),
        Route(f"{a}/users/{{username}}/tokens", api.create_token, methods=["POST"]),
        Route(f"{a}/roles", api.list_roles, methods=["GET"]),
        Route(f"{a}/roles/{{name}}", api.put_role, methods=["PUT"]),
        Route(f"{a}/roles/{{name}}", api.delete_role, methods=["DELETE"]),
        Route("/login", pages.login_page, methods=["GET"]),
        Route("/login", pages.login_post, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/", pages.index),
        Route("/audit", pages.audit_page),
        Route("/admin/users", pages.users_page, methods=["GET"]),
        Route("/admin/users", pages.users_post, methods=["POST"]),
        Route("/admin/users/{username}", pages.user_post, methods=["POST"]),
        Route("/admin/roles", pages.roles_page, methods=["GET"]),
        Route("/admin/roles", pages.role_post, methods=["POST"]),
        Route("/admin/roles/{name}", pages.role_post, methods=["POST"]),
        Route("/dags/{dag_id}", pages.dag_page),
        Route("/dags/{dag_id}/trigger", pages.trigger_post, methods=["POST"]),
        Route("/dags/{dag_id}/pause", pages.pause_post, methods=["POST"]),
        Route("/dags/{dag_id}/refresh", pages.refresh_post, methods=["POST"]),
        Route("/dags/{dag_id}/runs/{run_id}/{action}", pages.run_action_post, methods=["POST"]),
        Route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log", pages.log_page),
        Route("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/rendered", templates_pages.rendered_page),
        *varconn_http.routes(a),
    ]


def create_app(
    gateway: Gateway,
    auth: Authenticator,
    *,
    clock: Callable[[], dt.datetime],
    cookie_secure: str = "auto",
    secret_box: SecretBox | None = None,
) -> Starlette:
    app = GatewayApp(
        routes=routes(),
        exception_handlers={GatewayError: on_gateway_error, HTTPException: on_http_error, 500: on_unhandled_error},
    )
    app.state.gateway = gateway
    app.state.auth = auth
    app.state.admin = Admin(gateway.sessions, auth, gateway.audit, clock)
    app.state.clock = clock
    app.state.varconn = VarConn(gateway.sessions, gateway.audit, clock, secret_box)  # None: answers 503
    app.state.cookie_secure = cookie_secure
    return app
