"""The RunnerService's GetVariable and GetConnection on SQLite and MariaDB, over a real gRPC server: only a
running try with its own token reads, the executor decrypts, and a value it cannot decrypt is a clear error."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.executor.server import RunnerServicer
from services.executor.tokens import TokenSigner
from services.executor.varconn import RunnerSecrets
from spinner.db import varconn
from spinner.db.models import DagRun, TaskInstance
from spinner.db.varconn import ConnectionFields
from spinner.fernet import SecretBox, new_key
from spinner.v1 import common_pb2, executor_pb2, executor_pb2_grpc

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
KEY = new_key()
SIGNER = TokenSigner("test-secret")
RUNNING = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="running", try_number=2)
QUEUED = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="queued", try_number=1)


def _token(key: common_pb2.TaskTryKey) -> str:
    return SIGNER.sign(key.dag_id, key.run_id, key.task_id, key.try_number)


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    box = SecretBox(KEY)
    async with sessions() as s, s.begin():
        s.add(DagRun(dag_id="d", run_id="r", run_type="manual", state="running", logical_date=NOW, conf={},
                     partition="p", created_at=NOW))  # fmt: skip
        for task_id, state, n in (("running", "running", 2), ("queued", "queued", 1)):
            s.add(TaskInstance(dag_id="d", run_id="r", task_id=task_id, partition="p", state=state, try_number=n,
                               max_tries=0))  # fmt: skip
        await varconn.set_variable(s, box, "api_token", "tok-123456", description="", now=NOW, by="admin")
        fields = ConnectionFields(conn_id="db", conn_type="postgres", host="h", schema="app", login="u",
                                  password="pw-1234", port=5432, extra='{"sslmode": "require"}')  # fmt: skip
        await varconn.set_connection(s, box, fields, now=NOW, by="admin")
        await varconn.set_connection(s, box, ConnectionFields(conn_id="bare", conn_type="http"), now=NOW, by="admin")


@pytest.fixture
async def stub(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[executor_pb2_grpc.RunnerServiceStub]:
    await _seed(sessions)
    server = grpc.aio.server()
    secrets = RunnerSecrets(sessions, SIGNER, SecretBox(KEY))
    executor_pb2_grpc.add_RunnerServiceServicer_to_server(RunnerServicer(None, secrets), server)  # type: ignore[arg-type]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield executor_pb2_grpc.RunnerServiceStub(channel)
    finally:
        await server.stop(None)


async def test_a_running_try_reads_a_variable_and_a_connection_decrypted(
    stub: executor_pb2_grpc.RunnerServiceStub,
) -> None:
    r = await stub.GetVariable(executor_pb2.RunnerGetVariableRequest(key=RUNNING, token=_token(RUNNING),
                                                                     variable_key="api_token"))  # fmt: skip
    assert (r.found, r.value) == (True, "tok-123456")
    r = await stub.GetVariable(executor_pb2.RunnerGetVariableRequest(key=RUNNING, token=_token(RUNNING),
                                                                     variable_key="nope"))  # fmt: skip
    assert not r.found
    c = await stub.GetConnection(executor_pb2.RunnerGetConnectionRequest(key=RUNNING, token=_token(RUNNING),
                                                                         conn_id="db"))  # fmt: skip
    assert (c.found, c.conn_type, c.host, c.schema, c.login, c.password, c.port, c.extra) == (
        True, "postgres", "h", "app", "u", "pw-1234", 5432, '{"sslmode": "require"}',
    )  # fmt: skip
    bare = await stub.GetConnection(executor_pb2.RunnerGetConnectionRequest(key=RUNNING, token=_token(RUNNING),
                                                                            conn_id="bare"))  # fmt: skip
    assert bare.found and not bare.HasField("password") and not bare.HasField("port") and not bare.HasField("extra")


async def test_another_trys_token_or_a_try_not_running_is_refused(stub: executor_pb2_grpc.RunnerServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetVariable(executor_pb2.RunnerGetVariableRequest(key=RUNNING, token=_token(QUEUED),
                                                                     variable_key="api_token"))  # fmt: skip
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetConnection(executor_pb2.RunnerGetConnectionRequest(key=QUEUED, token=_token(QUEUED),
                                                                         conn_id="db"))  # fmt: skip
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "running try" in (e.value.details() or "")
    old = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="running", try_number=1)  # an earlier try
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetVariable(executor_pb2.RunnerGetVariableRequest(key=old, token=_token(old), variable_key="x"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_value_stored_with_another_key_is_a_clear_error(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _seed(sessions)
    other = RunnerSecrets(sessions, SIGNER, SecretBox(new_key()))
    from services.executor.backends.base import TryKey
    from services.executor.varconn import Undecryptable

    with pytest.raises(Undecryptable, match="variable 'api_token' cannot be decrypted with this service's Fernet key"):
        await other.variable(TryKey("d", "r", "running", 2), _token(RUNNING), "api_token")
    with pytest.raises(Undecryptable, match="the password of connection 'db' cannot be decrypted"):
        await other.connection(TryKey("d", "r", "running", 2), _token(RUNNING), "db")
