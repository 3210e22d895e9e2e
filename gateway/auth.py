"""Who is calling: API tokens, browser sessions in signed cookies with CSRF tokens, or an SSO proxy's header.

A browser session is a cookie signed with the gateway's secret key (itsdangerous), holding
the user's name and id, the user's session version when the session began, and the session's
CSRF token, so any gateway with the same key can serve any request. The only server-side state
is that version, a column of the user: logging out, a password change and disabling the user
bump it, and a cookie with another version is no session (its holder is anonymous). What the
user may do, and their current version, is read from the database and cached for
`cache_seconds` (SPINNER_AUTH_CACHE_SECONDS, 5 by default): a bump ends the sessions at once on
the gateway that made it and within those seconds on every other.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.errors import Unauthenticated
from spinner.db import auth as db_auth
from spinner.db.auth import Grants
from spinner.db.models import User

SESSION_COOKIE = "spinner_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Principal:
    """An authenticated user and what their roles allow."""

    username: str
    user_id: int
    grants: Grants
    via: str  # token | session | header
    session_version: int = 0  # the user's current one: a session cookie must carry it

    @property
    def is_admin(self) -> bool:
        return self.grants.is_admin

    @property
    def roles(self) -> list[str]:
        return sorted(self.grants.roles)

    def can_read(self, dag_id: str) -> bool:
        return self.grants.read_all or dag_id in self.grants.read

    def can_edit(self, dag_id: str) -> bool:
        return self.grants.edit_all or dag_id in self.grants.edit

    def readable(self) -> frozenset[str] | None:
        """The DAG ids this user may read, or None for every DAG."""
        return None if self.grants.read_all else self.grants.read


@dataclass(frozen=True)
class Actor:
    """A principal with where the request came from: what the audit log records."""

    principal: Principal
    remote_addr: str

    @property
    def username(self) -> str:
        return self.principal.username


@dataclass(frozen=True)
class BrowserSession:
    """A cookie's content: a logged-in user (name, id, session version) or nobody yet, and the CSRF token."""

    username: str | None
    csrf: str
    user_id: int | None = None
    version: int | None = None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Authenticator:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        secret_key: str,
        clock: Callable[[], dt.datetime],
        session_max_age: float = 12 * 3600,
        trusted_header: str = "",
        trusted_proxies: tuple[str, ...] = (),
        cache_seconds: float = 5.0,
    ) -> None:
        if not secret_key:
            raise ValueError("the gateway needs a secret key to sign session cookies")
        self._sessions = sessions
        self._signer = URLSafeTimedSerializer(secret_key, salt="spinner-session")
        self._clock = clock
        self.session_max_age = session_max_age
        self.trusted_header = trusted_header.lower()
        self._trusted_proxies = trusted_proxies
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str], tuple[dt.datetime, Principal | None]] = {}

    # --- browser sessions ------------------------------------------------------------------

    def load_session(self, cookie: str | None) -> BrowserSession | None:
        if not cookie:
            return None
        try:
            data: Any = self._signer.loads(cookie, max_age=int(self.session_max_age))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user, user_id, version = data.get("u"), _int(data.get("i")), _int(data.get("v"))
        if not isinstance(user, str) or user_id is None or version is None:
            # Nobody logged in, or a cookie from before session versions: its CSRF token still serves the login form.
            return BrowserSession(None, data["c"])
        return BrowserSession(user, data["c"], user_id, version)

    def dump_session(self, session: BrowserSession) -> str:
        payload: dict[str, str | int] = {"c": session.csrf}
        if session.username and session.user_id is not None and session.version is not None:
            payload.update(u=session.username, i=session.user_id, v=session.version)
        return self._signer.dumps(payload)

    @staticmethod
    def new_session(principal: Principal | None = None) -> BrowserSession:
        """A fresh CSRF token, for this user's session (at its current version) or for nobody."""
        if principal is None:
            return BrowserSession(None, secrets.token_urlsafe(24))
        return BrowserSession(
            principal.username, secrets.token_urlsafe(24), principal.user_id, principal.session_version
        )

    @staticmethod
    def csrf_ok(session: BrowserSession | None, sent: str | None) -> bool:
        return bool(session and sent and hmac.compare_digest(session.csrf.encode(), sent.encode()))

    # --- principals ------------------------------------------------------------------------

    async def authenticate(
        self, headers: Mapping[str, str], session: BrowserSession | None, remote_addr: str
    ) -> Principal | None:
        """The caller, from (in this order) a bearer token, the SSO header, the session cookie.

        A bearer token that is wrong is an error, not a fall-back to the other ways.
        """
        authorization = headers.get("authorization", "")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
            principal = await self._cached("token", token.strip(), self._by_token)
            if principal is None:
                raise Unauthenticated("the API token is not valid (unknown, expired, or its user is disabled)")
            return principal
        if self.trusted_header and (not self._trusted_proxies or remote_addr in self._trusted_proxies):
            name = headers.get(self.trusted_header, "").strip()
            if name:
                return await self._cached("header", name, self._by_header)
        if session is not None and session.username:
            principal = await self._cached("session", session.username, self._by_name)
            if principal is None or (principal.user_id, principal.session_version) != (
                session.user_id,
                session.version,
            ):
                return None  # ended (logout, new password, disabled) or a deleted user's name taken again
            return principal
        return None

    async def token_principal(self, token: str) -> Principal:
        """For gRPC: the token from the call's metadata."""
        principal = await self._cached("token", token, self._by_token)
        if principal is None:
            raise Unauthenticated("the API token is not valid (unknown, expired, or its user is disabled)")
        return principal

    async def login(self, username: str, password: str) -> Principal | None:
        async with self._sessions() as s:
            user = await db_auth.get_user(s, username)
            if user is None or not user.active or not db_auth.verify_password(user.password_hash, password):
                return None
            return await self._principal(s, user, "session")

    async def end_sessions(self, principal: Principal) -> None:
        """Ends every browser session of the user (logout does it): their cookies are no session any more."""
        async with self._sessions() as s, s.begin():
            await db_auth.end_sessions(s, principal.user_id)
        self.forget(principal.username)

    def forget(self, username: str | None = None) -> None:
        """Drops cached grants (after a change to users or roles)."""
        if username is None:
            self._cache.clear()
        else:
            self._cache = {k: v for k, v in self._cache.items() if v[1] is None or v[1].username != username}

    async def _cached(self, kind: str, key: str, load: Callable[[AsyncSession, str], Any]) -> Principal | None:
        now = self._clock()
        hit = self._cache.get((kind, key))
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._sessions() as s, s.begin():
            principal: Principal | None = await load(s, key)
        if self._cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[(kind, key)] = (now + dt.timedelta(seconds=self._cache_seconds), principal)
        return principal

    async def _principal(self, s: AsyncSession, user: User, via: str) -> Principal:
        return Principal(user.username, user.id, await db_auth.grants(s, user.id), via, user.session_version)

    async def _by_token(self, s: AsyncSession, token: str) -> Principal | None:
        user = await db_auth.user_by_token(s, token, self._clock())
        return await self._principal(s, user, "token") if user else None

    async def _by_name(self, s: AsyncSession, username: str) -> Principal | None:
        user = await db_auth.get_user(s, username)
        return await self._principal(s, user, "session") if user and user.active else None

    async def _by_header(self, s: AsyncSession, username: str) -> Principal | None:
        """The proxy has authenticated this user; one seen for the first time gets the default role."""
        if not db_auth.NAME_RE.match(username):
            raise Unauthenticated(f"the {self.trusted_header} header does not hold a valid user name")
        user = await db_auth.get_user(s, username)
        if user is None:
            try:
                async with s.begin_nested():
                    user = await db_auth.create_user(
                        s, username, password=None, roles=[db_auth.DEFAULT_ROLE], now=self._clock()
                    )
            except IntegrityError:  # another gateway made the same user a moment ago
                user = await db_auth.get_user(s, username)
                if user is None:
                    raise
        return await self._principal(s, user, "header") if user.active else None
