"""Variables and connections in the database, encrypted with the caller's SecretBox.

Shared by the gateway (admins set and read them) and the executor (task runners read them).
Each function takes the caller's session and never commits. Values are encrypted here on the
way in and decrypted on the way out, so no other module sees a ciphertext or forgets to encrypt.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.models import Connection, Variable
from spinner.fernet import SecretBox


@dataclass(frozen=True)
class VariableValue:
    key: str
    value: str
    description: str
    updated_at: dt.datetime | None
    updated_by: str


@dataclass(frozen=True)
class ConnectionFields:
    conn_id: str
    conn_type: str = ""
    description: str = ""
    host: str = ""
    schema: str = ""
    login: str = ""
    password: str | None = None
    port: int | None = None
    extra: str | None = None
    updated_at: dt.datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True)
class VariableKey:
    """A variable as listed: no value."""

    key: str
    description: str
    updated_at: dt.datetime | None
    updated_by: str


# --- variables -------------------------------------------------------------------------------


async def get_variable(session: AsyncSession, box: SecretBox, key: str) -> VariableValue | None:
    row = await session.get(Variable, key, populate_existing=True)
    if row is None:
        return None
    value = box.decrypt(row.val, f"variable '{key}'")
    return VariableValue(row.key, value, row.description, row.updated_at, row.updated_by)


async def list_variables(session: AsyncSession) -> list[VariableKey]:
    rows = (await session.execute(select(Variable).order_by(Variable.key))).scalars()
    return [VariableKey(r.key, r.description, r.updated_at, r.updated_by) for r in rows]


async def all_variables(session: AsyncSession, box: SecretBox) -> list[VariableValue]:
    rows = (await session.execute(select(Variable).order_by(Variable.key))).scalars()
    return [
        VariableValue(r.key, box.decrypt(r.val, f"variable '{r.key}'"), r.description, r.updated_at, r.updated_by)
        for r in rows
    ]


async def set_variable(
    session: AsyncSession,
    box: SecretBox,
    key: str,
    value: str,
    *,
    description: str | None,
    now: dt.datetime,
    by: str,
) -> bool:
    """Creates or replaces the variable; True when it is new. description None keeps the one it has."""
    row = await session.get(Variable, key, populate_existing=True)
    created = row is None
    if row is None:
        row = Variable(key=key, description="")
        session.add(row)
    row.val = box.encrypt(value)
    if description is not None:
        row.description = description
    row.updated_at, row.updated_by = now, by
    await session.flush()
    return created


async def delete_variable(session: AsyncSession, key: str) -> bool:
    result = await session.execute(delete(Variable).where(Variable.key == key))
    return bool(getattr(result, "rowcount", 0))


# --- connections -----------------------------------------------------------------------------


def _fields(row: Connection, box: SecretBox, *, secrets: bool) -> ConnectionFields:
    what = f"connection '{row.conn_id}'"
    password = box.decrypt(row.password, f"the password of {what}") if secrets and row.password is not None else None
    extra = box.decrypt(row.extra, f"the extra of {what}") if secrets and row.extra is not None else None
    return ConnectionFields(
        conn_id=row.conn_id, conn_type=row.conn_type, description=row.description, host=row.host,
        schema=row.schema, login=row.login, password=password, port=row.port, extra=extra,
        updated_at=row.updated_at, updated_by=row.updated_by,
    )  # fmt: skip


async def get_connection(session: AsyncSession, box: SecretBox, conn_id: str) -> ConnectionFields | None:
    row = await session.get(Connection, conn_id, populate_existing=True)
    return _fields(row, box, secrets=True) if row is not None else None


async def list_connections(session: AsyncSession, box: SecretBox) -> list[tuple[ConnectionFields, bool, bool]]:
    """Every connection without its password and extra, with whether each is set."""
    rows = (await session.execute(select(Connection).order_by(Connection.conn_id))).scalars()
    return [(_fields(r, box, secrets=False), r.password is not None, r.extra is not None) for r in rows]


async def all_connections(session: AsyncSession, box: SecretBox) -> list[ConnectionFields]:
    rows = (await session.execute(select(Connection).order_by(Connection.conn_id))).scalars()
    return [_fields(r, box, secrets=True) for r in rows]


async def set_connection(
    session: AsyncSession, box: SecretBox, fields: ConnectionFields, *, now: dt.datetime, by: str
) -> bool:
    """Creates or replaces the connection with exactly these fields; True when it is new."""
    row = await session.get(Connection, fields.conn_id, populate_existing=True)
    created = row is None
    if row is None:
        row = Connection(conn_id=fields.conn_id)
        session.add(row)
    row.conn_type, row.description, row.host = fields.conn_type, fields.description, fields.host
    row.schema, row.login, row.port = fields.schema, fields.login, fields.port
    row.password = box.encrypt(fields.password) if fields.password is not None else None
    row.extra = box.encrypt(fields.extra) if fields.extra is not None else None
    row.updated_at, row.updated_by = now, by
    await session.flush()
    return created


async def delete_connection(session: AsyncSession, conn_id: str) -> bool:
    result = await session.execute(delete(Connection).where(Connection.conn_id == conn_id))
    return bool(getattr(result, "rowcount", 0))
