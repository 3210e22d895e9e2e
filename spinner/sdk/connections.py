"""`Connection` and `BaseHook.get_connection`: how a task reaches an outside system (Airflow's names).

`BaseHook.get_connection(conn_id)` looks in SPINNER_CONN_<CONN_ID> (upper-cased; a URI or a JSON
object of the fields) first, then asks the executor's runner API with the try's token. The
password (and the URI, which holds it) and extra fields with secret-looking names are masked as
*** in the task's log from then on. At DAG parse time it is refused: connections are only
available while a task runs.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import grpc

from spinner.runner import masking
from spinner.runner.client import NotInTask, current
from spinner.sdk import parse_state
from spinner.sdk.variables import SecretsUnavailable, rpc_detail

ENV_PREFIX = "SPINNER_CONN_"
FIELDS = ("conn_type", "description", "host", "login", "password", "schema", "port", "extra")


class ConnectionNotFound(KeyError):
    """No connection with this id (Airflow's AirflowNotFoundException)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "connection not found"


class Connection:
    """A connection's fields; `Connection(uri=...)` parses a URI, `get_uri()` makes one."""

    def __init__(
        self,
        conn_id: str | None = None,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        schema: str | None = None,
        port: int | str | None = None,
        extra: str | dict[str, Any] | None = None,
        uri: str | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.description = description
        if uri is not None and any(v is not None for v in (conn_type, host, login, password, schema, port, extra)):
            raise ValueError("give a Connection either a uri or its fields, not both")
        self.conn_type = conn_type
        self.host = host
        self.login = login
        self.password = password
        self.schema = schema
        try:
            self.port: int | None = int(port) if port is not None and port != "" else None
        except ValueError:
            raise ValueError(f"connection port must be a whole number, not {port!r}") from None
        self.extra = json.dumps(extra) if isinstance(extra, dict) else extra
        if uri is not None:
            self._parse_uri(uri)

    def _parse_uri(self, uri: str) -> None:
        if "://" not in uri:
            raise ValueError(f"not a connection URI (scheme://login:password@host:port/schema?extra): {uri!r}")
        parts = urlsplit(uri)
        conn_type = parts.scheme
        if conn_type == "postgresql":
            conn_type = "postgres"
        self.conn_type = conn_type.replace("-", "_")
        self.host = unquote(parts.hostname or "") or None
        self.schema = unquote(parts.path[1:]) if parts.path.startswith("/") and len(parts.path) > 1 else None
        self.login = unquote(parts.username) if parts.username is not None else None
        self.password = unquote(parts.password) if parts.password is not None else None
        try:
            self.port = parts.port
        except ValueError as e:
            raise ValueError(f"bad port in connection URI: {e}") from None
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            if "__extra__" in query:
                self.extra = query["__extra__"]
            else:
                self.extra = json.dumps(query)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """`extra` as a dict ({} when empty or not a JSON object)."""
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def get_password(self) -> str | None:
        return self.password

    def get_extra(self) -> str | None:
        return self.extra

    def get_uri(self) -> str:
        """The connection as one URI (Airflow's format: extra as query parameters, or __extra__ JSON)."""
        uri = f"{self.conn_type.lower().replace('_', '-')}://" if self.conn_type else "//"
        authority = ""
        if self.login is not None:
            authority += quote(self.login, safe="")
        if self.password is not None:
            authority += ":" + quote(self.password, safe="")
        if authority:
            uri += authority + "@"
        host = quote(self.host, safe="") if self.host else ""
        if self.port:
            host += f"@:{self.port}" if not host and not authority else f":{self.port}"
        if self.schema:
            host += f"/{quote(self.schema, safe='')}"
        uri += host
        if self.extra:
            extra = self.extra_dejson
            flat = all(isinstance(v, str) for v in extra.values()) and extra
            query = urlencode(extra) if flat else urlencode({"__extra__": self.extra})
            uri += ("?" if self.schema else "/?") + query
        return uri

    def to_dict(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id, "conn_type": self.conn_type, "description": self.description,
            "host": self.host, "login": self.login, "password": self.password, "schema": self.schema,
            "port": self.port, "extra": self.extra,
        }  # fmt: skip

    @classmethod
    def from_json(cls, value: str, conn_id: str | None = None) -> Connection:
        """A JSON object of the fields (Airflow's JSON connection format); extra may be an object."""
        try:
            data = json.loads(value)
        except ValueError as e:
            raise ValueError(f"connection JSON is not valid: {e}") from None
        if not isinstance(data, dict):
            raise ValueError("connection JSON must be an object of its fields")
        unknown = set(data) - set(FIELDS) - {"conn_id"}
        if unknown:
            raise ValueError(f"unknown connection field(s) {sorted(unknown)}; known: {', '.join(FIELDS)}")
        fields = {k: v for k, v in data.items() if k != "conn_id"}
        return cls(conn_id=conn_id or data.get("conn_id"), **fields)

    def __repr__(self) -> str:
        return f"<Connection {self.conn_id} {self.conn_type or ''}://{self.host or ''}>"  # never the password


def mask_connection(conn: Connection) -> None:
    if conn.password:
        masking.mask_secret(conn.password)
        masking.mask_secret(conn.get_uri())
    for name, value in conn.extra_dejson.items():
        if masking.is_sensitive(name):
            masking.mask_secret(value)


def _from_env(conn_id: str) -> Connection | None:
    raw = os.environ.get(ENV_PREFIX + conn_id.upper())
    if raw is None:
        return None
    raw = raw.strip()
    conn = Connection.from_json(raw, conn_id) if raw.startswith("{") else Connection(conn_id=conn_id, uri=raw)
    conn.conn_id = conn_id
    return conn


def _from_executor(conn_id: str) -> Connection | None:
    from spinner.v1 import executor_pb2

    client = current(f"BaseHook.get_connection('{conn_id}')")
    request = executor_pb2.RunnerGetConnectionRequest(key=client.key, token=client.token, conn_id=conn_id)
    try:
        r: executor_pb2.RunnerGetConnectionResponse = client.call(
            client.stub.GetConnection, request, f"reading connection {conn_id}"
        )
    except grpc.RpcError as e:
        raise SecretsUnavailable(f"cannot read connection '{conn_id}': {rpc_detail(e)}") from None
    if not r.found:
        return None
    return Connection(
        conn_id=conn_id, conn_type=r.conn_type or None, description=r.description or None, host=r.host or None,
        login=r.login or None, schema=r.schema or None,
        password=r.password if r.HasField("password") else None,
        port=r.port if r.HasField("port") else None,
        extra=r.extra if r.HasField("extra") else None,
    )  # fmt: skip


def get_connection(conn_id: str) -> Connection:
    if not isinstance(conn_id, str) or not conn_id:
        raise ValueError("get_connection needs a conn_id: a non-empty string")
    if parse_state.parsing():
        raise NotInTask(
            f"BaseHook.get_connection('{conn_id}') at DAG parse time: connections are only available while "
            "a task runs (read it in execute, a python_callable or a template such as "
            f"{{{{ conn.{conn_id}.host }}}}), never when the DAG file is parsed"
        )
    conn = _from_env(conn_id) or _from_executor(conn_id)
    if conn is None:
        raise ConnectionNotFound(f"The conn_id `{conn_id}` isn't defined")
    mask_connection(conn)
    return conn


class BaseHook:
    """What hooks build on: `BaseHook.get_connection(conn_id)`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return get_connection(conn_id)
