"""Users, roles and tokens: what an Admin manages (users may make their own tokens). Every change is audited."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit import AuditLog
from gateway.auth import Actor, Authenticator, Principal
from gateway.errors import (
    Conflict,
    Forbidden,
    GatewayError,
    InvalidRequest,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
)
from gateway.throttle import LoginThrottle
from spinner.db import auth as db_auth
from spinner.db.models import User

T = TypeVar("T")
BUILT_IN_ROLES = (db_auth.ADMIN_ROLE, db_auth.DEFAULT_ROLE)
MIN_PASSWORD = 8


def _user_json(user: User, roles: list[str]) -> dict[str, Any]:
    return {
        "username": user.username,
        "email": user.email,
        "active": user.active,
        "roles": sorted(roles),
        "has_password": bool(user.password_hash),
        "created_at": user.created_at.isoformat() if user.created_at else None,
    }


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not db_auth.NAME_RE.match(value):
        raise InvalidRequest(f"{what} must be 1-200 letters, digits, '_', '-', '.' or '@'")
    return value


def _roles(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise InvalidRequest("roles must be a list of role names")
    return [_name(r, "a role name") for r in value]


def _password(value: Any) -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD or len(value) > 1000:
        raise InvalidRequest(f"password must be a string of {MIN_PASSWORD} to 1000 characters")
    return value


class Admin:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        auth: Authenticator,
        audit: AuditLog,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._sessions = sessions
        self._auth = auth
        self._audit = audit
        self._clock = clock
        self.throttle = LoginThrottle()

    async def _admin(
        self, actor: Actor, action: str, do: Callable[[AsyncSession], Awaitable[T]], details: dict[str, Any]
    ) -> T:
        """Runs an Admin-only change in one transaction; audits it whatever happens."""
        if not actor.principal.is_admin:
            await self._audit.record(actor, action, "denied", details=details)
            raise Forbidden(f"only an Admin may {action.replace('.', ' ').replace('_', ' ')}")
        try:
            async with self._sessions() as s, s.begin():
                result = await do(s)
        except IntegrityError:
            await self._audit.record(actor, action, "error", details={**details, "error": "conflict"})
            raise Conflict(f"{action}: it conflicts with what exists (already there?)") from None
        except GatewayError as e:
            await self._audit.record(actor, action, "error", details={**details, "error": str(e)})
            raise
        self._auth.forget()
        await self._audit.record(actor, action, "ok", details=details)
        return result

    # --- users ---------------------------------------------------------------------------

    async def users(self, actor: Actor) -> list[dict[str, Any]]:
        if not actor.principal.is_admin:
            await self._audit.record(actor, "user.list", "denied")
            raise Forbidden("only an Admin may list users")
        async with self._sessions() as s:
            return [_user_json(u, roles) for u, roles in await db_auth.list_users(s)]

    async def create_user(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        username = _name(body.get("username"), "username")
        roles = _roles(body.get("roles", [db_auth.DEFAULT_ROLE]))
        email = body.get("email", "")
        if not isinstance(email, str) or len(email) > 300:
            raise InvalidRequest("email must be a string of at most 300 characters")
        generated = "password" not in body
        password = db_auth.new_password() if generated else _password(body.get("password"))

        async def do(s: AsyncSession) -> dict[str, Any]:
            if await db_auth.get_user(s, username) is not None:
                raise Conflict(f"user '{username}' exists already")
            user = await db_auth.create_user(
                s, username, password=password, roles=roles, now=self._clock(), email=email
            )
            out = _user_json(user, roles)
            if generated:
                out["password"] = password  # shown this once
            return out

        return await self._admin(actor, "user.create", do, {"user": username, "roles": roles})

    async def update_user(self, actor: Actor, username: str, body: dict[str, Any]) -> dict[str, Any]:
        roles = _roles(body["roles"]) if "roles" in body else None
        active = body.get("active")
        if active is not None and not isinstance(active, bool):
            raise InvalidRequest("active must be true or false")
        password = _password(body["password"]) if "password" in body else None
        if actor.username == username and (active is False or (roles is not None and db_auth.ADMIN_ROLE not in roles)):
            if actor.principal.is_admin:
                raise InvalidRequest("you may not disable yourself or take your own Admin role away")

        async def do(s: AsyncSession) -> dict[str, Any]:
            user = await db_auth.get_user(s, username)
            if user is None:
                raise NotFound(f"user '{username}' not found")
            if roles is not None:
                await db_auth.set_roles(s, user, roles)
            if active is not None:
                user.active = active
            if password is not None:
                user.password_hash = db_auth.hash_password(password)
            if password is not None or active is False:
                # Every browser session of theirs ends (one re-enabled later must not come back to life).
                await db_auth.end_sessions(s, user.id)
            return _user_json(user, await db_auth.user_roles(s, user.id))

        changed: dict[str, Any] = {k: v for k, v in (("roles", roles), ("active", active)) if v is not None}
        if password is not None:
            changed["password"] = "changed"
        return await self._admin(actor, "user.update", do, {"user": username, **changed})

    async def delete_user(self, actor: Actor, username: str) -> None:
        if actor.username == username:
            raise InvalidRequest("you may not delete yourself")

        async def do(s: AsyncSession) -> None:
            user = await db_auth.get_user(s, username)
            if user is None:
                raise NotFound(f"user '{username}' not found")
            await db_auth.delete_user(s, user)

        await self._admin(actor, "user.delete", do, {"user": username})

    async def create_token(self, actor: Actor, username: str, name: Any, days: Any) -> dict[str, Any]:
        """A token for a user: Admins for anyone, others for themselves."""
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise InvalidRequest("name must be a string of 1 to 200 characters")
        if days is not None and (not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650):
            raise InvalidRequest("expires_in_days must be a whole number from 1 to 3650")
        details = {"user": username, "token": name}
        if not actor.principal.is_admin and actor.username != username:
            await self._audit.record(actor, "token.create", "denied", details=details)
            raise Forbidden("you may only make tokens for yourself")
        now = self._clock()
        expires = now + dt.timedelta(days=days) if days else None
        async with self._sessions() as s, s.begin():
            user = await db_auth.get_user(s, username)
            if user is None:
                raise NotFound(f"user '{username}' not found")
            token = await db_auth.create_token(s, user.id, name, now, expires)
        await self._audit.record(actor, "token.create", "ok", details=details)
        expires_at = expires.isoformat() if expires else None
        return {"token": token, "username": username, "name": name, "expires_at": expires_at}

    async def login(self, username: Any, password: Any, remote_addr: str) -> Principal:
        """Checks a password; the attempt is audited either way."""
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            raise InvalidRequest("username and password are required")
        name = username[:200]
        wait = self.throttle.wait(name, remote_addr)
        if wait > 0:
            await self._audit.record(name, "login", "denied", remote_addr=remote_addr)
            raise TooManyAttempts(f"too many failed logins for {name!r} lately; try again in {math.ceil(wait)} s")
        principal = await self._auth.login(name, password)
        await self._audit.record(name, "login", "ok" if principal else "denied", remote_addr=remote_addr)
        if principal is None:
            self.throttle.failed(name, remote_addr)
            raise Unauthenticated("wrong user name or password")
        self.throttle.succeeded(name, remote_addr)
        return principal

    # --- roles ---------------------------------------------------------------------------

    async def roles(self, actor: Actor) -> list[dict[str, Any]]:
        if not actor.principal.is_admin:
            await self._audit.record(actor, "role.list", "denied")
            raise Forbidden("only an Admin may list roles")
        async with self._sessions() as s:
            return [_role_json(name, perms, synced) for name, perms, synced in await _roles_by_source(s)]

    async def put_role(self, actor: Actor, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Creates the role, or with "permissions" makes its Admin-given DAG permissions exactly those.

        The permissions DAG files give the role (from_dag_files) are not touched: the files own them.
        """
        _name(name, "role name")
        perms = body.get("permissions")
        wanted: set[tuple[str, str]] | None = None
        if perms is not None:
            if not isinstance(perms, list):
                raise InvalidRequest('permissions must be a list of {"action": ..., "dag_id": ...}')
            wanted = set()
            for p in perms:
                if not isinstance(p, dict) or set(p) != {"action", "dag_id"}:
                    raise InvalidRequest('each permission is {"action": "can_dag_read"|"can_dag_edit", "dag_id": ...}')
                if p["action"] not in db_auth.DAG_ACTIONS:
                    raise InvalidRequest(f"action must be one of {', '.join(db_auth.DAG_ACTIONS)}")
                if not isinstance(p["dag_id"], str) or not (p["dag_id"] == "*" or _dag_id_ok(p["dag_id"])):
                    raise InvalidRequest('dag_id must be a DAG id, or "*" for every DAG')
                wanted.add((p["action"], db_auth.dag_resource(p["dag_id"])))

        async def do(s: AsyncSession) -> dict[str, Any]:
            await db_auth.role_ids(s, [name], create=True)
            if wanted is not None:
                have = set((await db_auth.roles_with_permissions(s, db_auth.FROM_ADMIN)).get(name, []))
                for action, resource in have - wanted:
                    await db_auth.revoke(s, name, action, resource, db_auth.FROM_ADMIN)
                for action, resource in wanted - have:
                    await db_auth.grant(s, name, action, resource, db_auth.FROM_ADMIN)
            return next(_role_json(n, p, d) for n, p, d in await _roles_by_source(s) if n == name)

        details: dict[str, Any] = {"role": name}
        if wanted is not None:
            details["permissions"] = sorted(f"{a} {r}" for a, r in wanted)
        return await self._admin(actor, "role.put", do, details)

    async def delete_role(self, actor: Actor, name: str) -> None:
        if name in BUILT_IN_ROLES:
            raise InvalidRequest(f"the built-in role {name} cannot be deleted")

        async def do(s: AsyncSession) -> None:
            if not await db_auth.delete_role(s, name):
                raise NotFound(f"role '{name}' not found")

        await self._admin(actor, "role.delete", do, {"role": name})


async def _roles_by_source(s: AsyncSession) -> list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]]:
    """Each role with its Admin-given and its DAG-file permissions."""
    given = await db_auth.roles_with_permissions(s, db_auth.FROM_ADMIN)
    synced = await db_auth.roles_with_permissions(s, db_auth.FROM_DAG)
    return [(name, perms, synced.get(name, [])) for name, perms in given.items()]


def _role_json(name: str, given: list[tuple[str, str]], synced: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "name": name,
        "permissions": [{"action": a, "resource": r} for a, r in given],
        "from_dag_files": [{"action": a, "resource": r} for a, r in synced],
    }


def _dag_id_ok(dag_id: str) -> bool:
    from spinner.sdk.dag import ID_RE

    return bool(ID_RE.match(dag_id))
