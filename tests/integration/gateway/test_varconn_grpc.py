"""Variables and connections over the public gRPC API: the same engine as REST (Admin only, audited)."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import select

from gateway.server import SpinnerApiServicer
from gateway.varconn import VarConn
from spinner.db import auth as db_auth
from spinner.db.models import AuditLog
from spinner.fernet import SecretBox, new_key
from spinner.v1 import gateway_pb2, gateway_pb2_grpc

from .conftest import NOW, Site, add_user
from .test_gateway_grpc import _Bearer


async def test_an_admin_manages_variables_and_connections_over_grpc_and_others_are_refused(site: Site) -> None:
    admin = await add_user(site.sessions, "grpc-admin", [db_auth.ADMIN_ROLE])
    viewer = await add_user(site.sessions, "grpc-viewer", ["spinner-users"])
    varconn = VarConn(site.sessions, site.gateway.audit, lambda: NOW, SecretBox(new_key()))
    server = grpc.aio.server()
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(
        SpinnerApiServicer(site.gateway, site.auth, varconn=varconn), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer(admin)]) as ch:
            stub = gateway_pb2_grpc.SpinnerApiStub(ch)
            r = await stub.VariableSet(gateway_pb2.VariableSetRequest(key="region", value="eu", description="d"))
            assert r.created
            v = await stub.VariableGet(gateway_pb2.VariableGetRequest(key="region"))
            assert (v.key, v.value, v.description, v.updated_by) == ("region", "eu", "d", "grpc-admin")
            listed = await stub.VariableList(gateway_pb2.VariableListRequest())
            assert [(x.key, x.value) for x in listed.variables] == [("region", "")]  # no values in lists
            await stub.ConnectionSet(
                gateway_pb2.ConnectionSetRequest(conn_id="db", uri="postgres://u:pw-1234@h:5432/app")
            )
            fields = gateway_pb2.ConnectionInfo(conn_type="http", host="api", port=443, extra='{"a": "b"}')
            await stub.ConnectionSet(gateway_pb2.ConnectionSetRequest(conn_id="api", connection=fields))
            c = await stub.ConnectionGet(gateway_pb2.ConnectionGetRequest(conn_id="db"))
            assert (c.conn_type, c.host, c.port, c.schema, c.login, c.password) == (
                "postgres",
                "h",
                5432,
                "app",
                "u",
                "pw-1234",
            )
            assert c.uri == "postgres://u:pw-1234@h:5432/app"
            conns = (await stub.ConnectionList(gateway_pb2.ConnectionListRequest())).connections
            assert [(x.conn_id, x.has_password, x.HasField("password"), x.has_extra) for x in conns] == [
                ("api", False, False, True), ("db", True, False, False),
            ]  # fmt: skip
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await stub.ConnectionSet(gateway_pb2.ConnectionSetRequest(conn_id="x", uri="no-scheme"))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a connection URI" in (
                bad.value.details() or ""
            )
            await stub.VariableDelete(gateway_pb2.VariableDeleteRequest(key="region"))
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.VariableGet(gateway_pb2.VariableGetRequest(key="region"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer(viewer)]) as ch:
            stub = gateway_pb2_grpc.SpinnerApiStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.ConnectionGet(gateway_pb2.ConnectionGetRequest(conn_id="db"))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.VariableSet(gateway_pb2.VariableSetRequest(key="region", value="mine"))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.stop(None)
    async with site.sessions() as s:
        q = select(AuditLog.action).where(AuditLog.username == "grpc-viewer", AuditLog.outcome == "denied")
        assert sorted((await s.execute(q)).scalars()) == ["connection.get", "variable.set"]
