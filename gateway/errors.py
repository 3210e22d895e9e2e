"""The gateway's domain errors and the one place that maps them to HTTP and gRPC status codes."""

from __future__ import annotations

import grpc


class GatewayError(Exception):
    code = "error"
    http_status = 500
    grpc_status = grpc.StatusCode.INTERNAL


class NotFound(GatewayError):
    code, http_status, grpc_status = "not_found", 404, grpc.StatusCode.NOT_FOUND


class NoSuchInstance(NotFound):
    """The task has task instances, but not the one the map_index names (gateway/mapped.py)."""


class LogMissing(NotFound):
    """The try has started but its log is not there (yet): a page can wait for it instead of failing."""


class InvalidRequest(GatewayError):
    code, http_status, grpc_status = "invalid_request", 400, grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(GatewayError):
    code, http_status, grpc_status = "unauthenticated", 401, grpc.StatusCode.UNAUTHENTICATED


class Forbidden(GatewayError):
    code, http_status, grpc_status = "forbidden", 403, grpc.StatusCode.PERMISSION_DENIED


class Conflict(GatewayError):
    code, http_status, grpc_status = "conflict", 409, grpc.StatusCode.ALREADY_EXISTS


class TooManyAttempts(GatewayError):
    code, http_status, grpc_status = "too_many_attempts", 429, grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(GatewayError):
    code, http_status, grpc_status = "unavailable", 503, grpc.StatusCode.UNAVAILABLE


_FROM_GRPC: dict[grpc.StatusCode, type[GatewayError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.FAILED_PRECONDITION: Conflict,
}


def from_rpc_error(e: grpc.aio.AioRpcError, what: str) -> GatewayError:
    """A service's answer as the gateway's error; the service's own message is kept."""
    cls = _FROM_GRPC.get(e.code(), Unavailable)
    detail = e.details() or str(e.code())
    if cls is Unavailable and e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(f"{what} is not reachable: {detail}")
    if e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        # The user was allowed; the service did not accept the gateway itself (its key: spinner/identity.py).
        return Unavailable(f"{what} refused the gateway's own credential: {detail}")
    return cls(detail)
