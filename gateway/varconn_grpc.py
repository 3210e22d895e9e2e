"""The public gRPC API's Variable* and Connection* calls, over the same engine as REST (gateway/varconn.py).

A mixin of SpinnerApiServicer (gateway/server.py), which gives it `_actor` and `_varconn`.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from gateway.auth import Actor
from gateway.errors import GatewayError, Unavailable
from gateway.varconn import VarConn
from spinner.v1 import gateway_pb2


async def _abort(context: grpc.aio.ServicerContext, e: GatewayError) -> NoReturn:
    await context.abort(e.grpc_status, str(e))
    raise AssertionError("unreachable")


def _variable(v: dict[str, Any]) -> gateway_pb2.VariableInfo:
    return gateway_pb2.VariableInfo(
        key=v["key"], value=v.get("value", ""), description=v["description"], updated_at=v["updated_at"] or "",
        updated_by=v["updated_by"],
    )  # fmt: skip


def _connection(c: dict[str, Any]) -> gateway_pb2.ConnectionInfo:
    return gateway_pb2.ConnectionInfo(
        conn_id=c["conn_id"], conn_type=c["conn_type"], description=c["description"], host=c["host"],
        schema=c["schema"], login=c["login"], password=c.get("password"), port=c["port"], extra=c.get("extra"),
        uri=c.get("uri", ""), has_password=c.get("has_password", c.get("password") is not None),
        has_extra=c.get("has_extra", c.get("extra") is not None), updated_at=c["updated_at"] or "",
        updated_by=c["updated_by"],
    )  # fmt: skip


def _fields(request: gateway_pb2.ConnectionSetRequest) -> dict[str, Any] | str:
    if request.uri:
        return request.uri
    c = request.connection
    body: dict[str, Any] = {
        "conn_type": c.conn_type, "description": c.description, "host": c.host, "schema": c.schema, "login": c.login,
    }  # fmt: skip
    for name in ("password", "port", "extra"):
        if c.HasField(name):
            body[name] = getattr(c, name)
    return body


class VarConnRpcs:
    _varconn: VarConn | None

    async def _actor(self, context: grpc.aio.ServicerContext) -> Actor:
        raise NotImplementedError

    def _vc(self) -> VarConn:
        if self._varconn is None:
            raise Unavailable("this gateway serves no variables or connections")
        return self._varconn

    async def VariableList(
        self, request: gateway_pb2.VariableListRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.VariableListResponse:
        try:
            variables = await self._vc().list_variables(await self._actor(context))
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.VariableListResponse(variables=[_variable(v) for v in variables])

    async def VariableGet(
        self, request: gateway_pb2.VariableGetRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.VariableInfo:
        try:
            return _variable(await self._vc().get_variable(await self._actor(context), request.key))
        except GatewayError as e:
            await _abort(context, e)

    async def VariableSet(
        self, request: gateway_pb2.VariableSetRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.VariableSetResponse:
        description = request.description if request.HasField("description") else None
        try:
            result = await self._vc().set_variable(await self._actor(context), request.key, request.value, description)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.VariableSetResponse(created=result["created"])

    async def VariableDelete(
        self, request: gateway_pb2.VariableDeleteRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.VariableDeleteResponse:
        try:
            await self._vc().delete_variable(await self._actor(context), request.key)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.VariableDeleteResponse()

    async def ConnectionList(
        self, request: gateway_pb2.ConnectionListRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ConnectionListResponse:
        try:
            connections = await self._vc().list_connections(await self._actor(context))
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ConnectionListResponse(connections=[_connection(c) for c in connections])

    async def ConnectionGet(
        self, request: gateway_pb2.ConnectionGetRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ConnectionInfo:
        try:
            return _connection(await self._vc().get_connection(await self._actor(context), request.conn_id))
        except GatewayError as e:
            await _abort(context, e)

    async def ConnectionSet(
        self, request: gateway_pb2.ConnectionSetRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ConnectionSetResponse:
        try:
            result = await self._vc().set_connection(await self._actor(context), request.conn_id, _fields(request))
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ConnectionSetResponse(created=result["created"])

    async def ConnectionDelete(
        self, request: gateway_pb2.ConnectionDeleteRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ConnectionDeleteResponse:
        try:
            await self._vc().delete_connection(await self._actor(context), request.conn_id)
        except GatewayError as e:
            await _abort(context, e)
        return gateway_pb2.ConnectionDeleteResponse()
