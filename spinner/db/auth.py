"""Users, roles, API tokens and DAG permissions in the database, shared by the gateway and `standalone`.

Every function takes the caller's session and never commits. Passwords are stored as
argon2id hashes (salted, with the parameters in the hash); API tokens as their SHA-256,
so a leaked database gives away neither.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from spinner.db.models import ApiToken, Permission, Role, RolePermission, SerializedDagModel, User, UserRole

ADMIN_ROLE = "Admin"
DEFAULT_ROLE = "spinner-users"
CAN_READ = "can_dag_read"
CAN_EDIT = "can_dag_edit"
DAG_ACTIONS = (CAN_READ, CAN_EDIT)
ALL_DAGS = "DAG:*"
FROM_DAG = "dag"  # a role permission synced from a DAG file's access_control
FROM_ADMIN = "admin"  # one an Admin gave (the Admin API and pages, the built-in defaults)
TOKEN_PREFIX = "spn_"
NAME_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,200}$")
BATCH = 500

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if not password_hash:
        return False  # users from the single sign-on proxy have no password
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    return secrets.token_urlsafe(15)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def dag_resource(dag_id: str) -> str:
    return f"DAG:{dag_id}"


@dataclass(frozen=True)
class Grants:
    """What a user's roles allow: DAG ids by action, or every DAG."""

    roles: frozenset[str]
    read: frozenset[str]
    edit: frozenset[str]
    read_all: bool
    edit_all: bool

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


# --- roles and defaults --------------------------------------------------------------------


async def role_ids(session: AsyncSession, names: Iterable[str], *, create: bool) -> dict[str, int]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    found = {r.name: r.id for r in (await session.execute(select(Role).where(Role.name.in_(wanted)))).scalars()}
    if create:
        for name in wanted:
            if name not in found:
                role = Role(name=name)
                session.add(role)
                await session.flush()
                found[name] = role.id
    return found


async def permission_ids(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Ids of (action, resource) permissions, created when missing."""
    wanted = sorted(set(pairs))
    found: dict[tuple[str, str], int] = {}
    for i in range(0, len(wanted), BATCH):
        chunk = wanted[i : i + BATCH]
        q = select(Permission).where(tuple_(Permission.action, Permission.resource).in_(chunk))
        found.update({(p.action, p.resource): p.id for p in (await session.execute(q)).scalars()})
    missing = [pair for pair in wanted if pair not in found]
    for action, resource in missing:
        perm = Permission(action=action, resource=resource)
        session.add(perm)
        await session.flush()
        found[(action, resource)] = perm.id
    return found


async def grant(session: AsyncSession, role: str, action: str, resource: str, source: str = FROM_ADMIN) -> bool:
    """Gives a role one permission from this source; False when it had it already from there."""
    rid = (await role_ids(session, [role], create=True))[role]
    pid = (await permission_ids(session, [(action, resource)]))[(action, resource)]
    if await session.get(RolePermission, (rid, pid, source)) is not None:
        return False
    session.add(RolePermission(role_id=rid, permission_id=pid, source=source))
    await session.flush()
    return True


async def revoke(session: AsyncSession, role: str, action: str, resource: str, source: str = FROM_ADMIN) -> bool:
    """Takes one permission from this source away; the same permission from the other source stays."""
    q = (
        select(RolePermission)
        .join(Role, Role.id == RolePermission.role_id)
        .join(Permission, Permission.id == RolePermission.permission_id)
        .where(Role.name == role, Permission.action == action, Permission.resource == resource)
        .where(RolePermission.source == source)
    )
    row = (await session.execute(q)).scalar_one_or_none()
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


async def ensure_defaults(session: AsyncSession) -> None:
    """The two built-in roles, and every DAG readable by the default role."""
    await role_ids(session, [ADMIN_ROLE, DEFAULT_ROLE], create=True)
    await grant(session, DEFAULT_ROLE, CAN_READ, ALL_DAGS)


async def roles_with_permissions(session: AsyncSession, source: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """Every role with its (action, resource) permissions, sorted: from this source, or from either."""
    out: dict[str, list[tuple[str, str]]] = {
        r.name: [] for r in (await session.execute(select(Role).order_by(Role.name))).scalars()
    }
    q = (
        select(Role.name, Permission.action, Permission.resource)
        .join(RolePermission, RolePermission.role_id == Role.id)
        .join(Permission, Permission.id == RolePermission.permission_id)
        .distinct()
        .order_by(Role.name, Permission.resource, Permission.action)
    )
    if source is not None:
        q = q.where(RolePermission.source == source)
    for name, action, resource in (await session.execute(q)).all():
        out.setdefault(name, []).append((action, resource))
    return out


async def roles_on(session: AsyncSession, resources: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """The roles holding permissions on these resources, with those (action, resource) pairs."""
    q = (
        select(Role.name, Permission.action, Permission.resource)
        .join(RolePermission, RolePermission.role_id == Role.id)
        .join(Permission, Permission.id == RolePermission.permission_id)
        .where(Permission.resource.in_(list(resources)))
        .distinct()
        .order_by(Role.name, Permission.action)
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for name, action, resource in (await session.execute(q)).all():
        out.setdefault(name, []).append((action, resource))
    return out


async def delete_role(session: AsyncSession, name: str) -> bool:
    role = (await session.execute(select(Role).where(Role.name == name))).scalar_one_or_none()
    if role is None:
        return False
    # Explicitly, not by ON DELETE CASCADE alone: SQLite enforces foreign keys only when asked to.
    await session.execute(delete(UserRole).where(UserRole.role_id == role.id))
    await session.execute(delete(RolePermission).where(RolePermission.role_id == role.id))
    await session.delete(role)
    await session.flush()
    return True


async def delete_user(session: AsyncSession, user: User) -> None:
    await session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    await session.execute(delete(UserRole).where(UserRole.user_id == user.id))
    await session.delete(user)
    await session.flush()


# --- users ---------------------------------------------------------------------------------


async def get_user(session: AsyncSession, username: str) -> User | None:
    return (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def end_sessions(session: AsyncSession, user_id: int) -> None:
    """Bumps the user's session version: every browser session of theirs is over (gateway/auth.py)."""
    await session.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))


async def list_users(session: AsyncSession) -> list[tuple[User, list[str]]]:
    users = (await session.execute(select(User).order_by(User.username))).scalars().all()
    q = select(UserRole.user_id, Role.name).join(Role, Role.id == UserRole.role_id).order_by(Role.name)
    roles: dict[int, list[str]] = {}
    for user_id, name in (await session.execute(q)).all():
        roles.setdefault(user_id, []).append(name)
    return [(u, roles.get(u.id, [])) for u in users]


async def create_user(
    session: AsyncSession,
    username: str,
    *,
    password: str | None,
    roles: Sequence[str],
    now: dt.datetime,
    email: str = "",
) -> User:
    """A new user; with password None it can only come in through the single sign-on proxy."""
    user = User(
        username=username,
        email=email,
        password_hash=hash_password(password) if password else "",
        active=True,
        created_at=now,
        # Not 0: a deleted user's id may be taken again (SQLite reuses the highest rowid), and the
        # deleted user's cookies must be no session of the new user of that name.
        session_version=secrets.randbelow(1 << 30),
    )
    session.add(user)
    await session.flush()
    await set_roles(session, user, roles)
    return user


async def set_roles(session: AsyncSession, user: User, roles: Sequence[str]) -> None:
    """Makes the user's roles exactly these (roles are created when new)."""
    ids = await role_ids(session, roles, create=True)
    await session.execute(delete(UserRole).where(UserRole.user_id == user.id))
    for rid in sorted(ids.values()):
        session.add(UserRole(user_id=user.id, role_id=rid))
    await session.flush()


async def user_roles(session: AsyncSession, user_id: int) -> list[str]:
    q = select(Role.name).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == user_id)
    return sorted((await session.execute(q)).scalars())


async def grants(session: AsyncSession, user_id: int) -> Grants:
    """The user's roles and what they may do on DAGs, in two queries."""
    roles = frozenset(await user_roles(session, user_id))
    q = (
        select(Permission.action, Permission.resource)
        .join(RolePermission, RolePermission.permission_id == Permission.id)
        .join(UserRole, UserRole.role_id == RolePermission.role_id)
        .where(UserRole.user_id == user_id, Permission.action.in_(DAG_ACTIONS))
        .distinct()
    )
    read: set[str] = set()
    edit: set[str] = set()
    for action, resource in (await session.execute(q)).all():
        if not resource.startswith("DAG:"):
            continue
        target = edit if action == CAN_EDIT else read
        target.add(resource[4:])
    admin = ADMIN_ROLE in roles
    edit_all = admin or "*" in edit
    read_all = edit_all or "*" in read
    # Edit implies read.
    return Grants(roles, frozenset(read | edit), frozenset(edit), read_all, edit_all)


# --- tokens --------------------------------------------------------------------------------


async def create_token(
    session: AsyncSession, user_id: int, name: str, now: dt.datetime, expires_at: dt.datetime | None = None
) -> str:
    """A new token for the user; only its digest is kept, so this is the one time it is seen."""
    token = new_token()
    session.add(
        ApiToken(user_id=user_id, name=name, token_hash=token_digest(token), created_at=now, expires_at=expires_at)
    )
    await session.flush()
    return token


async def revoke_tokens(session: AsyncSession, user_id: int, name: str | None = None) -> int:
    q = delete(ApiToken).where(ApiToken.user_id == user_id)
    if name is not None:
        q = q.where(ApiToken.name == name)
    result = await session.execute(q)
    return int(getattr(result, "rowcount", 0))


async def user_by_token(session: AsyncSession, token: str, now: dt.datetime) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    q = (
        select(User, ApiToken.id, ApiToken.last_used_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_digest(token))
        .where((ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
    )
    row = (await session.execute(q)).first()
    if row is None:
        return None
    user, token_id, last_used = row
    # Written at most once a minute: a busy client must not turn every read into a write.
    if last_used is None or now - last_used > dt.timedelta(minutes=1):
        await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return user if user.active else None


# --- DAG access control from the DAG files -------------------------------------------------


async def sync_acl(session: AsyncSession, acls: Mapping[str, Mapping[str, Iterable[str]]]) -> int:
    """Makes each DAG's synced role permissions exactly what its access_control says; returns the changes.

    The same rule as the scheduler applies when it parses a DAG, for many DAGs in a few
    queries: the gateway runs it at start (every DAG) and on refresh (one). Only rows from
    the DAG files (FROM_DAG) are touched: an Admin's grants on the same DAGs stay.
    """
    if not acls:
        return 0
    resources = {dag_resource(d): d for d in acls}
    wanted: set[tuple[str, str, str]] = {
        (role, action, dag_resource(dag_id))
        for dag_id, acl in acls.items()
        for role, actions in acl.items()
        for action in actions
        if action in DAG_ACTIONS
    }
    rids = await role_ids(session, {r for r, _, _ in wanted}, create=True)
    pids = await permission_ids(session, {(a, res) for _, a, res in wanted})
    have: dict[tuple[str, str, str], tuple[int, int]] = {}
    keys = sorted(resources)
    for i in range(0, len(keys), BATCH):
        q = (
            select(Role.name, Permission.action, Permission.resource, RolePermission.role_id, Permission.id)
            .join(RolePermission, RolePermission.permission_id == Permission.id)
            .join(Role, Role.id == RolePermission.role_id)
            .where(Permission.resource.in_(keys[i : i + BATCH]), RolePermission.source == FROM_DAG)
        )
        for name, action, resource, rid, pid in (await session.execute(q)).all():
            have[(name, action, resource)] = (rid, pid)
    changes = 0
    for key, (rid, pid) in have.items():
        if key not in wanted:
            await session.execute(
                delete(RolePermission).where(
                    RolePermission.role_id == rid,
                    RolePermission.permission_id == pid,
                    RolePermission.source == FROM_DAG,
                )
            )
            changes += 1
    for role, action, resource in sorted(wanted - set(have)):
        session.add(RolePermission(role_id=rids[role], permission_id=pids[(action, resource)], source=FROM_DAG))
        changes += 1
    await session.flush()
    return changes


async def declared_acls(session: AsyncSession, dag_ids: Sequence[str] | None = None) -> dict[str, dict[str, list[str]]]:
    """Each DAG's access_control as last parsed (from its serialized form)."""
    q = select(SerializedDagModel.dag_id, SerializedDagModel.data)
    if dag_ids is not None:
        q = q.where(SerializedDagModel.dag_id.in_(list(dag_ids)))
    out: dict[str, dict[str, list[str]]] = {}
    for dag_id, data in (await session.execute(q)).all():
        acl = (data or {}).get("access_control") or {}
        out[dag_id] = {str(role): [str(a) for a in actions] for role, actions in acl.items()}
    return out
