"""Variables and connections as admins manage them (REST, CLI, web UI). Admin only, every change and
every refusal audited; values are encrypted by spinner/db/varconn.py with the gateway's Fernet key.

Reads of values (a variable's value, a connection's password, an export) are audited too: who read
which secret is worth knowing. Audit details name keys, never values.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit import AuditLog
from gateway.auth import Actor
from gateway.errors import Conflict, Forbidden, GatewayError, InvalidRequest, NotFound, Unavailable
from spinner.db import varconn as db
from spinner.db.varconn import ConnectionFields
from spinner.fernet import CannotDecrypt, SecretBox
from spinner.runner.masking import is_sensitive
from spinner.sdk.connections import Connection

T = TypeVar("T")
MAX_VALUE = 512 * 1024
MAX_FIELD = 500
MAX_DESCRIPTION = 5000
ON_EXISTING = ("overwrite", "skip", "fail")
CONN_FIELDS = {"conn_type", "description", "host", "login", "password", "schema", "port", "extra"}


def check_id(value: Any, what: str) -> str:
    from spinner.sdk.dag import ID_RE

    if not isinstance(value, str) or not ID_RE.match(value):
        raise InvalidRequest(f"{what} must be 1-250 letters, digits, '_', '-' or '.', not {value!r}")
    return value


def _text(value: Any, what: str, limit: int = MAX_FIELD, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be a string")
    if len(value) > limit:
        raise InvalidRequest(f"{what} is longer than {limit} characters")
    return value


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def variable_value(value: Any, key: str) -> str:
    """A value to store: text as it is, anything else as JSON (Airflow's import does the same)."""
    text: str
    if value is None:
        raise InvalidRequest(f"the value of variable {key} must be a string or JSON, not null")
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            raise InvalidRequest(f"the value of variable {key} must be a string or JSON") from None
    if len(text) > MAX_VALUE:
        raise InvalidRequest(f"the value of variable {key} is larger than {MAX_VALUE} characters")
    return text


def connection_fields(conn_id: str, body: Any) -> ConnectionFields:
    """A connection from a URI (a string, or {"uri": ...}) or from its fields."""
    check_id(conn_id, "conn_id")
    if isinstance(body, str):
        body = {"uri": body}
    if not isinstance(body, dict):
        raise InvalidRequest(f"connection {conn_id} must be a URI or an object of its fields")
    unknown = set(body) - CONN_FIELDS - {"uri"}
    if unknown:
        allowed = ", ".join(sorted(CONN_FIELDS | {"uri"}))
        raise InvalidRequest(f"connection {conn_id}: unknown field(s) {sorted(unknown)}; allowed: {allowed}")
    description = _text(body.get("description", ""), "description", MAX_DESCRIPTION) or ""
    if "uri" in body:
        if set(body) - {"uri", "description"}:
            raise InvalidRequest(f"connection {conn_id}: give either a uri or its fields, not both")
        uri = _text(body["uri"], "uri", 4 * MAX_FIELD) or ""
        try:
            conn = Connection(conn_id=conn_id, uri=uri)
        except ValueError as e:
            raise InvalidRequest(f"connection {conn_id}: {e}") from None
        fields: dict[str, Any] = {
            "conn_type": conn.conn_type, "host": conn.host, "schema": conn.schema, "login": conn.login,
            "password": conn.password, "port": conn.port, "extra": conn.extra,
        }  # fmt: skip
    else:
        fields = {k: body.get(k) for k in CONN_FIELDS - {"description"}}
    port = fields.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        raise InvalidRequest(f"connection {conn_id}: port must be a whole number from 1 to 65535")
    extra = fields.get("extra")
    if isinstance(extra, dict):
        extra = json.dumps(extra)
    elif extra is not None:
        extra = _text(extra, "extra", MAX_VALUE)
        if extra:
            try:
                parsed = json.loads(extra)
            except ValueError:
                raise InvalidRequest(f"connection {conn_id}: extra must be a JSON object") from None
            if not isinstance(parsed, dict):
                raise InvalidRequest(f"connection {conn_id}: extra must be a JSON object")
        extra = extra or None
    conn_type = _text(fields.get("conn_type") or "", "conn_type") or ""
    if not conn_type:
        raise InvalidRequest(f"connection {conn_id}: conn_type is required (e.g. postgres, http, aws)")
    return ConnectionFields(
        conn_id=conn_id,
        conn_type=conn_type,
        description=description,
        host=_text(fields.get("host") or "", "host") or "",
        schema=_text(fields.get("schema") or "", "schema") or "",
        login=_text(fields.get("login") or "", "login") or "",
        password=_text(fields.get("password"), "password", MAX_FIELD, nullable=True),
        port=port,
        extra=extra,
    )


def connection_json(
    c: ConnectionFields, *, secrets: bool, has_password: bool = False, has_extra: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "conn_id": c.conn_id, "conn_type": c.conn_type, "description": c.description, "host": c.host,
        "schema": c.schema, "login": c.login, "port": c.port,
        "updated_at": _iso(c.updated_at), "updated_by": c.updated_by,
    }  # fmt: skip
    if secrets:
        out["password"] = c.password
        out["extra"] = c.extra
        out["uri"] = _uri(c)
    else:
        out["has_password"] = has_password
        out["has_extra"] = has_extra
    return out


def _uri(c: ConnectionFields) -> str:
    return Connection(
        conn_id=c.conn_id, conn_type=c.conn_type or None, host=c.host or None, schema=c.schema or None,
        login=c.login or None, password=c.password, port=c.port, extra=c.extra,
    ).get_uri()  # fmt: skip


class VarConn:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        audit: AuditLog,
        clock: Callable[[], dt.datetime],
        box: SecretBox | None,
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._clock = clock
        self._box = box

    def box(self) -> SecretBox:
        if self._box is None:
            raise Unavailable("this gateway has no Fernet key: variables and connections are not available")
        return self._box

    async def _run(
        self, actor: Actor, action: str, do: Callable[[AsyncSession], Awaitable[T]], details: dict[str, Any]
    ) -> T:
        """An Admin-only action in one transaction, audited whatever happens."""
        if not actor.principal.is_admin:
            await self._audit.record(actor, action, "denied", details=details)
            what = action.split(".")[0]
            raise Forbidden(f"only an Admin may read or change {what}s")
        try:
            self.box()
            async with self._sessions() as s, s.begin():
                result = await do(s)
        except IntegrityError:
            await self._audit.record(actor, action, "error", details={**details, "error": "conflict"})
            raise Conflict(f"{action}: it changed at the same time; try again") from None
        except CannotDecrypt as e:
            await self._audit.record(actor, action, "error", details={**details, "error": str(e)})
            raise Conflict(str(e)) from None
        except GatewayError as e:
            await self._audit.record(actor, action, "error", details={**details, "error": str(e)})
            raise
        await self._audit.record(actor, action, "ok", details=details)
        return result

    # --- variables -------------------------------------------------------------------------

    async def list_variables(self, actor: Actor, include_values: bool = False) -> list[dict[str, Any]]:
        action = "variable.export" if include_values else "variable.list"

        async def do(s: AsyncSession) -> list[dict[str, Any]]:
            if include_values:
                return [
                    {
                        "key": v.key,
                        "value": v.value,
                        "description": v.description,
                        "updated_at": _iso(v.updated_at),
                        "updated_by": v.updated_by,
                    }
                    for v in await db.all_variables(s, self.box())
                ]
            return [
                {
                    "key": v.key,
                    "description": v.description,
                    "updated_at": _iso(v.updated_at),
                    "updated_by": v.updated_by,
                    "sensitive": is_sensitive(v.key),
                }
                for v in await db.list_variables(s)
            ]

        if not include_values and actor.principal.is_admin:  # a plain list shows no value: not audited
            self.box()
            async with self._sessions() as s:
                return await do(s)
        return await self._run(actor, action, do, {})

    async def get_variable(self, actor: Actor, key: str) -> dict[str, Any]:
        async def do(s: AsyncSession) -> dict[str, Any]:
            check_id(key, "key")
            v = await db.get_variable(s, self.box(), key)
            if v is None:
                raise NotFound(f"variable '{key}' not found")
            return {"key": v.key, "value": v.value, "description": v.description, "updated_at": _iso(v.updated_at),
                    "updated_by": v.updated_by}  # fmt: skip

        return await self._run(actor, "variable.get", do, {"key": key})

    async def set_variable(self, actor: Actor, key: str, value: Any, description: Any = None) -> dict[str, Any]:
        details = {"key": key}
        if not actor.principal.is_admin:
            return await self._run(actor, "variable.set", _nothing, details)
        check_id(key, "key")
        text = variable_value(value, key)
        desc = _text(description, "description", MAX_DESCRIPTION, nullable=True)

        async def do(s: AsyncSession) -> dict[str, Any]:
            created = await db.set_variable(
                s, self.box(), key, text, description=desc, now=self._clock(), by=actor.username
            )
            return {"key": key, "created": created}

        return await self._run(actor, "variable.set", do, details)

    async def delete_variable(self, actor: Actor, key: str) -> None:
        async def do(s: AsyncSession) -> None:
            if not await db.delete_variable(s, key):
                raise NotFound(f"variable '{key}' not found")

        await self._run(actor, "variable.delete", do, {"key": key})

    async def import_variables(self, actor: Actor, variables: Any, on_existing: Any = "overwrite") -> dict[str, Any]:
        if not actor.principal.is_admin:
            return await self._run(actor, "variable.import", _nothing, {})
        if not isinstance(variables, dict):
            raise InvalidRequest('variables must be an object of key: value, like {"env": "prod"}')
        if on_existing not in ON_EXISTING:
            raise InvalidRequest(f"on_existing must be one of {', '.join(ON_EXISTING)}")
        values = {check_id(k, "key"): variable_value(v, k) for k, v in variables.items()}

        async def do(s: AsyncSession) -> dict[str, Any]:
            existing = {v.key for v in await db.list_variables(s)} & set(values)
            if existing and on_existing == "fail":
                raise Conflict(f"variable(s) {', '.join(sorted(existing))} exist already (on_existing: fail)")
            written = []
            for key, text in sorted(values.items()):
                if key in existing and on_existing == "skip":
                    continue
                await db.set_variable(s, self.box(), key, text, description=None, now=self._clock(), by=actor.username)
                written.append(key)
            return {"imported": written, "skipped": sorted(existing - set(written))}

        keys = sorted(values)
        return await self._run(actor, "variable.import", do, {"keys": keys[:100], "count": len(keys)})

    # --- connections -----------------------------------------------------------------------

    async def list_connections(self, actor: Actor, include_secrets: bool = False) -> list[dict[str, Any]]:
        async def do(s: AsyncSession) -> list[dict[str, Any]]:
            if include_secrets:
                return [connection_json(c, secrets=True) for c in await db.all_connections(s, self.box())]
            return [
                connection_json(c, secrets=False, has_password=p, has_extra=e)
                for c, p, e in await db.list_connections(s, self.box())
            ]

        if not include_secrets and actor.principal.is_admin:
            self.box()
            async with self._sessions() as s:
                return await do(s)
        return await self._run(actor, "connection.export" if include_secrets else "connection.list", do, {})

    async def get_connection(self, actor: Actor, conn_id: str) -> dict[str, Any]:
        async def do(s: AsyncSession) -> dict[str, Any]:
            check_id(conn_id, "conn_id")
            c = await db.get_connection(s, self.box(), conn_id)
            if c is None:
                raise NotFound(f"connection '{conn_id}' not found")
            return connection_json(c, secrets=True)

        return await self._run(actor, "connection.get", do, {"conn_id": conn_id})

    async def set_connection(self, actor: Actor, conn_id: str, body: Any) -> dict[str, Any]:
        details = {"conn_id": conn_id}
        if not actor.principal.is_admin:
            return await self._run(actor, "connection.set", _nothing, details)
        fields = connection_fields(conn_id, body)

        async def do(s: AsyncSession) -> dict[str, Any]:
            created = await db.set_connection(s, self.box(), fields, now=self._clock(), by=actor.username)
            return {"conn_id": conn_id, "created": created}

        return await self._run(actor, "connection.set", do, {**details, "conn_type": fields.conn_type})

    async def delete_connection(self, actor: Actor, conn_id: str) -> None:
        async def do(s: AsyncSession) -> None:
            if not await db.delete_connection(s, conn_id):
                raise NotFound(f"connection '{conn_id}' not found")

        await self._run(actor, "connection.delete", do, {"conn_id": conn_id})

    async def import_connections(
        self, actor: Actor, connections: Any, on_existing: Any = "overwrite"
    ) -> dict[str, Any]:
        if not actor.principal.is_admin:
            return await self._run(actor, "connection.import", _nothing, {})
        if not isinstance(connections, dict):
            raise InvalidRequest(
                'connections must be an object of conn_id: URI or fields, like {"db": "postgres://h/d"}'
            )
        if on_existing not in ON_EXISTING:
            raise InvalidRequest(f"on_existing must be one of {', '.join(ON_EXISTING)}")
        parsed = {check_id(k, "conn_id"): connection_fields(k, v) for k, v in connections.items()}

        async def do(s: AsyncSession) -> dict[str, Any]:
            existing = {c.conn_id for c, _, _ in await db.list_connections(s, self.box())} & set(parsed)
            if existing and on_existing == "fail":
                raise Conflict(f"connection(s) {', '.join(sorted(existing))} exist already (on_existing: fail)")
            written = []
            for conn_id, fields in sorted(parsed.items()):
                if conn_id in existing and on_existing == "skip":
                    continue
                await db.set_connection(s, self.box(), fields, now=self._clock(), by=actor.username)
                written.append(conn_id)
            return {"imported": written, "skipped": sorted(existing - set(written))}

        ids = sorted(parsed)
        return await self._run(actor, "connection.import", do, {"conn_ids": ids[:100], "count": len(ids)})


async def _nothing(s: AsyncSession) -> Any:
    raise AssertionError("reached only by an Admin")
