"""Which caller may call which internal method: checked on every call before its handler runs.

A service's server gets a `ServiceAuth` with its policy: for each full method name the services
that may call it (`allow("gateway", ...)`), or `RUNNER` for the runner API, whose every request
carries its try's runner token and is checked by its handler (services/executor/server.py).
Health checking and reflection stay open. A method missing from the policy is refused: a new
method is closed until someone says who may call it.

A call without a service token is UNAUTHENTICATED; with a token this server's audience does not
accept (bad signature, expired, for another service) UNAUTHENTICATED too; a valid caller the policy
does not allow PERMISSION_DENIED, as is a `spinner-on-behalf-of` from anyone but the gateway.
Every refusal is logged, counted (`spinner.rpc.refused`) and audited (`audit_log`, outcome
"denied", the caller's name or "anonymous", at most 20 rows a second so a flood cannot fill the
table: the rest are counted).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from spinner.identity import AUTHORIZATION, ON_BEHALF_OF, Refused, Verifier

log = logging.getLogger(__name__)

RUNNER = "runner"  # the handler checks the try's runner token
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
AUDIT_PER_SECOND = 20


def allow(*services: str) -> frozenset[str]:
    return frozenset(services)


Policy = Mapping[str, "frozenset[str] | str"]


@dataclass(frozen=True)
class Caller:
    """Who made the call being handled: a service, and for the gateway the user it acts for."""

    service: str
    on_behalf_of: str = ""

    def describe(self) -> str:
        return f"{self.service} for {self.on_behalf_of}" if self.on_behalf_of else self.service


_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("spinner_caller", default=None)


def current_caller() -> Caller | None:
    """The verified caller of the call being handled (None for the runner API and open methods)."""
    return _caller.get()


@dataclass
class RefusalAudit:
    """Writes refusals to audit_log, at most AUDIT_PER_SECOND a second, off the call's path."""

    sessions: async_sessionmaker[AsyncSession] | None
    service: str
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    _window: float = 0.0
    _in_window: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def record(self, caller: str, method: str, peer: str, reason: str) -> bool:
        """False when this second's rows are used up (the refusal is still logged and counted)."""
        if self.sessions is None:
            return False
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window, self._in_window = now, 0
        if self._in_window >= AUDIT_PER_SECOND:
            return False
        self._in_window += 1
        task = asyncio.create_task(self._write(caller, method, peer, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _write(self, caller: str, method: str, peer: str, reason: str) -> None:
        from spinner.db.models import AuditLog

        assert self.sessions is not None
        try:
            async with self.sessions() as s, s.begin():
                s.add(
                    AuditLog(
                        ts=self.clock(), username=caller[:200], action=f"rpc {method}"[:100], dag_id=None,
                        run_id=None, task_id=None, remote_addr=peer[:100], outcome="denied",
                        details={"service": self.service, "reason": reason[:500]},
                    )
                )  # fmt: skip
        except Exception as e:  # a read-only database (logs) or an outage: the log line stays
            log.warning("could not audit a refused call of %s: %s", method, e)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)


class ServiceAuth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        verifier: Verifier,
        policy: Policy,
        *,
        audit: RefusalAudit | None = None,
        meter: metrics.Meter | None = None,
    ) -> None:
        self._verifier = verifier
        self._policy = dict(policy)
        self._audit = audit
        meter = meter or metrics.get_meter("spinner.rpc")
        self._refused = meter.create_counter("spinner.rpc.refused", description="internal calls refused")

    def _check(self, method: str, metadata: Mapping[str, str]) -> tuple[grpc.StatusCode, str, str] | Caller | None:
        """None: open; a Caller: allowed; else the refusal (code, reason, who asked)."""
        if method.startswith(OPEN_PREFIXES):
            return None
        rule = self._policy.get(method)
        if rule == RUNNER:
            return None
        header = metadata.get(AUTHORIZATION, "")
        if not header.startswith("Bearer "):
            return grpc.StatusCode.UNAUTHENTICATED, f"{method} needs a Spinner service credential", "anonymous"
        try:
            service = self._verifier.verify(header.removeprefix("Bearer ").strip())
        except Refused as e:
            return grpc.StatusCode.UNAUTHENTICATED, str(e), "anonymous"
        on_behalf = metadata.get(ON_BEHALF_OF, "")
        caller = Caller(service, on_behalf)
        if on_behalf and service != "gateway":
            return grpc.StatusCode.PERMISSION_DENIED, f"{service} may not act on behalf of a user", service
        if not isinstance(rule, frozenset) or service not in rule:
            return grpc.StatusCode.PERMISSION_DENIED, f"{service} may not call {method}", service
        return caller

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        metadata = {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        verdict = self._check(method, metadata)
        if verdict is None:
            return handler
        if isinstance(verdict, Caller):
            return _with_caller(handler, verdict)
        code, reason, caller = verdict
        return _refusal(handler, code, reason, self._refuse(method, caller, code, reason))

    def _refuse(
        self, method: str, caller: str, code: grpc.StatusCode, reason: str
    ) -> Callable[[grpc.aio.ServicerContext], None]:
        def note(context: grpc.aio.ServicerContext) -> None:
            peer = context.peer() or ""
            self._refused.add(1, {"method": method, "code": code.name})
            log.warning("refused %s from %s (%s): %s", method, peer, code.name, reason)
            if self._audit is not None:
                self._audit.record(f"service:{caller}", method, peer, reason)

        return note


def _kinds(handler: grpc.RpcMethodHandler) -> dict[str, Any]:
    return {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}


def _with_caller(handler: grpc.RpcMethodHandler, caller: Caller) -> grpc.RpcMethodHandler:
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = _caller.set(caller)
            try:
                return await unary(request, context)
            finally:
                _caller.reset(token)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **_kinds(handler))
    if handler.unary_stream is not None:
        stream = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            token = _caller.set(caller)
            try:
                result = stream(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
            finally:
                _caller.reset(token)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **_kinds(handler))
    return handler


def _refusal(
    handler: grpc.RpcMethodHandler,
    code: grpc.StatusCode,
    reason: str,
    note: Callable[[grpc.aio.ServicerContext], None],
) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        note(context)
        await context.abort(code, reason)

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        note(context)
        await context.abort(code, reason)
        yield  # pragma: no cover - abort raises

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(refuse, **_kinds(handler))
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(refuse_stream, **_kinds(handler))

    async def refuse_streaming_request(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        note(context)
        await context.abort(code, reason)

    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(refuse_streaming_request, **_kinds(handler))
    return grpc.stream_stream_rpc_method_handler(refuse_stream, **_kinds(handler))
