"""What the REST handlers and the pages share: who is calling, CSRF, parsing parameters, rendering."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from gateway import jsonio
from gateway.admin import Admin
from gateway.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Actor, Authenticator, BrowserSession
from gateway.engine import Gateway
from gateway.errors import Forbidden, InvalidRequest, Unauthenticated
from gateway.headers import NONCE_KEY
from gateway.mapped import check_map_index
from spinner.mapping import NO_MAP_INDEX

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY = 1 << 20
MAX_INT = 1 << 53  # what every JSON client and a 64-bit database column can hold
STATE_COLORS = {
    "success": "#2e9e44",
    "failed": "#d23c3c",
    "upstream_failed": "#f0a040",
    "up_for_retry": "#f5d142",
    "up_for_reschedule": "#6fe7db",  # a sensor between pokes: no process, no slot
    "running": "#7bd34a",
    "queued": "#8d8d8d",
    "scheduled": "#c8b6e2",
    "skipped": "#f0a0d0",
    None: "#e6e6e6",
}

Handler = Callable[[Request, Actor], Awaitable[Response]]


def gw(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def admin(request: Request) -> Admin:
    a: Admin = request.app.state.admin
    return a


def authenticator(request: Request) -> Authenticator:
    a: Authenticator = request.app.state.auth
    return a


def remote_addr(request: Request) -> str:
    return request.client.host if request.client else ""


# --- parameters ----------------------------------------------------------------------------


def int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > len(str(MAX_INT)) + 1:  # never parse (nor echo back) a number of thousands of digits
        raise InvalidRequest(f"query parameter {name} is out of range")
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter {name} must be an integer, not {raw!r}") from None
    if not -MAX_INT <= value <= MAX_INT:
        raise InvalidRequest(f"query parameter {name} is out of range")
    return value


def optional_map_index(request: Request) -> int | None:
    """`?map_index=N`: which instance of a mapped task (docs/adr/0007-dynamic-task-mapping.md); None when absent."""
    value = int_param(request, "map_index", None)
    return check_map_index(value) if value is not None else None


def map_index_param(request: Request) -> int:
    """`?map_index=N` where one task instance is meant; absent: -1, an unmapped task's."""
    value = optional_map_index(request)
    return NO_MAP_INDEX if value is None else value


def bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "yes", "1"):
        return True
    if raw.lower() in ("false", "no", "0"):
        return False
    raise InvalidRequest(f"query parameter {name} must be true or false, not {raw!r}")


def str_param(request: Request, name: str, max_len: int = 250) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_len:
        raise InvalidRequest(f"query parameter {name} is longer than {max_len} characters")
    return raw


async def read_body(request: Request, what: str = "request body") -> bytes:
    """The body, read as it comes and refused as soon as it passes MAX_BODY (a 50 MB body is never held whole)."""
    declared = request.headers.get("content-length", "")
    too_big = InvalidRequest(f"{what} is larger than 1 MiB")
    if declared.isascii() and declared.isdigit() and (len(declared) > 10 or int(declared) > MAX_BODY):
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, allowed: set[str]) -> dict[str, Any]:
    raw = await read_body(request)
    body: Any = jsonio.loads(raw, "request body") if raw.strip() else {}
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    unknown = set(body) - allowed
    if unknown:
        raise InvalidRequest(f"unknown field(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return body


async def form(request: Request) -> dict[str, str]:
    """An HTML form post (application/x-www-form-urlencoded), last value of each field."""
    raw = await read_body(request, "form")
    try:
        fields = parse_qs(raw.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise InvalidRequest("form is not valid UTF-8") from None
    return {k: v[-1] for k, v in fields.items()}


# --- sessions and who is calling -----------------------------------------------------------


def browser_session(request: Request) -> BrowserSession | None:
    if "browser_session" not in request.scope.setdefault("state", {}):
        request.state.browser_session = authenticator(request).load_session(request.cookies.get(SESSION_COOKIE))
    session: BrowserSession | None = request.state.browser_session
    return session


def set_session(request: Request, response: Response, session: BrowserSession) -> None:
    auth = authenticator(request)
    secure_setting = request.app.state.cookie_secure
    https = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"
    secure = secure_setting == "always" or (secure_setting == "auto" and https)
    response.set_cookie(
        SESSION_COOKIE,
        auth.dump_session(session),
        max_age=int(auth.session_max_age),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


async def actor_of(request: Request) -> Actor | None:
    # A request with a token never needs its cookie read (and its signature checked).
    session = None if "authorization" in request.headers else browser_session(request)
    try:
        principal = await authenticator(request).authenticate(request.headers, session, remote_addr(request))
    except Unauthenticated as e:
        if "authorization" in request.headers:  # a refused token (the other way to fail is a bad SSO header)
            details = {"via": "rest", "method": request.method, "path": request.url.path[:500]}
            await gw(request).audit.token_refused(
                remote_addr(request), request.headers["authorization"], str(e), details
            )
        raise
    return Actor(principal, remote_addr(request)) if principal else None


async def audit_csrf_refusal(request: Request, actor: Actor | str) -> None:
    """A write refused for a missing or wrong CSRF token (a forged cross-site post?): audited like any refusal,
    at most RefusalLimiter's rows a second per address (a page that floods posts must not flood the table)."""
    await gw(request).audit.refused(
        actor, "csrf", dag_id=request.path_params.get("dag_id"), run_id=request.path_params.get("run_id"),
        remote_addr=remote_addr(request), details={"method": request.method, "path": request.url.path[:500]},
    )  # fmt: skip


async def _check_csrf(request: Request, actor: Actor, sent: str | None) -> None:
    """Writes from a browser need the session's CSRF token; only bearer-token requests do not.

    The SSO proxy's header comes with every request of a logged-in browser, a forged cross-site
    form post included, so it is no proof of intent either.
    """
    if request.method in UNSAFE and actor.principal.via != "token":
        if not authenticator(request).csrf_ok(browser_session(request), sent):
            await audit_csrf_refusal(request, actor)
            raise Forbidden("missing or wrong CSRF token: reload the page and try again")


def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A REST endpoint: the caller must be authenticated (401 otherwise)."""

    async def endpoint(request: Request) -> Response:
        actor = await actor_of(request)
        if actor is None:
            raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>' or log in")
        await _check_csrf(request, actor, request.headers.get(CSRF_HEADER))
        return await handler(request, actor)

    return endpoint


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A web page or form post: someone not logged in is sent to the login page."""

    async def endpoint(request: Request) -> Response:
        actor = await actor_of(request)
        if actor is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        if request.method in UNSAFE:
            fields = await form(request)
            request.state.form = fields
            await _check_csrf(request, actor, fields.get(CSRF_FIELD))
        request.state.actor = actor
        return await handler(request, actor)

    return endpoint


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    session = browser_session(request)
    fresh = session is None
    if session is None:
        session = Authenticator.new_session()
        request.state.browser_session = session
    actor: Actor | None = getattr(request.state, "actor", None)
    ctx = {
        "me": actor.principal if actor else None, "csrf": session.csrf, "colors": STATE_COLORS,
        "csp_nonce": getattr(request.state, NONCE_KEY, ""), **context,
    }  # fmt: skip
    response = TEMPLATES.TemplateResponse(request, name, ctx, status_code=status_code)
    if fresh:
        set_session(request, response, session)
    return response


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
