"""Who may come in: API tokens, browser logins with CSRF-protected forms, the SSO proxy's header."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from gateway.app import create_app
from gateway.auth import SESSION_COOKIE, Authenticator
from gateway.throttle import LoginThrottle
from spinner.db.models import ApiToken, AuditLog, User

from .conftest import ADMIN_PASSWORD, NOW, Site


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": _csrf(page.text), "next": "/"}
    )


async def _audit(site: Site, action: str) -> list[AuditLog]:
    async with site.sessions() as s:
        return list((await s.execute(select(AuditLog).where(AuditLog.action == action))).scalars())


async def test_the_api_needs_a_token(site: Site) -> None:
    anonymous = site.client_for(None)
    r = await anonymous.get("/api/v1/dags")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    r = await site.client_for("spn_not-a-real-token").get("/api/v1/dags")
    assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]
    r = await anonymous.get("/api/v1/dags", headers={"authorization": "Basic YWRtaW46eA=="})
    assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
    assert (await anonymous.get("/api/v1/health")).status_code == 200


async def test_pages_send_a_stranger_to_the_login_page(site: Site) -> None:
    r = await site.client_for(None).get("/dags/dag_0")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fdags%2Fdag_0"


async def test_login_sets_a_signed_session_cookie_and_logout_ends_it(site: Site) -> None:
    async with site.client_for(None) as browser:
        r = await _login(browser, "admin", ADMIN_PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
        home = await browser.get("/")
        assert home.status_code == 200 and "dag_0" in home.text and 'id="whoami">admin' in home.text
        r = await browser.post("/logout", data={"csrf_token": _csrf(home.text)})
        assert r.status_code == 303
        assert (await browser.get("/")).status_code == 303
    entries = await _audit(site, "login")
    assert [(e.username, e.outcome) for e in entries] == [("admin", "ok")]
    assert [(e.username, e.outcome) for e in await _audit(site, "logout")] == [("admin", "ok")]


async def test_a_forged_cookie_is_no_login(site: Site) -> None:
    async with site.client_for(None) as browser:
        r = await _login(browser, "admin", ADMIN_PASSWORD)
        value = r.cookies[SESSION_COOKIE]
        browser.cookies.clear()
        browser.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
        assert (await browser.get("/")).status_code == 303


async def test_wrong_password_is_refused_and_audited(site: Site) -> None:
    async with site.client_for(None) as browser:
        r = await _login(browser, "admin", "wrong password")
        assert r.status_code == 401 and "wrong user name or password" in r.text
        r = await _login(browser, "nobody", "whatever1")
        assert r.status_code == 401
    entries = await _audit(site, "login")
    assert [(e.username, e.outcome) for e in entries] == [("admin", "denied"), ("nobody", "denied")]


async def test_login_form_without_the_csrf_token_is_refused(site: Site) -> None:
    async with site.client_for(None) as browser:
        await browser.get("/login")
        r = await browser.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 403 and SESSION_COOKIE not in r.cookies


async def test_cookie_writes_need_the_csrf_token(site: Site) -> None:
    async with site.client_for(None) as browser:
        await _login(browser, "admin", ADMIN_PASSWORD)
        page = await browser.get("/dags/dag_0")
        # A form posted from another site carries the cookie but not the token.
        r = await browser.post("/dags/dag_0/pause", data={"paused": "true"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = await browser.post("/api/v1/dags/dag_0/runs", json={})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
        # With it, the request goes through (to "no scheduler", in this test).
        r = await browser.post("/api/v1/dags/dag_0/runs", json={}, headers={"x-csrf-token": _csrf(page.text)})
        assert r.status_code == 503
        r = await browser.post("/dags/dag_0/trigger", data={"csrf_token": _csrf(page.text)})
        assert r.status_code == 503 and "no scheduler holds partition" in r.text


async def test_a_password_gives_a_token_and_only_its_hash_is_stored(site: Site) -> None:
    anonymous = site.client_for(None)
    r = await anonymous.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 201
    token = r.json()["token"]
    me = await site.client_for(token).get("/api/v1/me")
    assert me.json() == {"username": "admin", "roles": ["Admin"], "is_admin": True, "via": "token"}
    r = await anonymous.post("/api/v1/auth/token", json={"username": "admin", "password": "nope"})
    assert r.status_code == 401
    async with site.sessions() as s:
        hashes = list((await s.execute(select(ApiToken.token_hash))).scalars())
        user = (await s.execute(select(User).where(User.username == "admin"))).scalar_one()
    assert token not in hashes and len(hashes) == 2
    assert user.password_hash.startswith("$argon2id$") and ADMIN_PASSWORD not in user.password_hash


async def test_a_disabled_user_and_an_expired_token_are_refused(site: Site) -> None:
    viewer = await site.user("viewer", ["spinner-users"], "viewer-password")
    assert (await viewer.get("/api/v1/dags")).status_code == 200
    r = await site.client.patch("/api/v1/users/viewer", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert (await viewer.get("/api/v1/dags")).status_code == 401
    async with site.client_for(None) as browser:
        assert (await _login(browser, "viewer", "viewer-password")).status_code == 401


@pytest.mark.parametrize("proxies", [(), ("127.0.0.1",)])
async def test_trusted_header_mode_behind_an_sso_proxy(site: Site, proxies: tuple[str, ...]) -> None:
    auth = Authenticator(
        sessions=site.sessions, secret_key="k", clock=lambda: NOW, trusted_header="X-Forwarded-User",
        trusted_proxies=proxies, cache_seconds=0,
    )  # fmt: skip
    app = create_app(site.gateway, auth, clock=lambda: NOW)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as proxied:
        r = await proxied.get("/api/v1/me", headers={"x-forwarded-user": "carol@example.com"})
        assert r.json() == {"username": "carol@example.com", "roles": ["spinner-users"], "is_admin": False,
                            "via": "header"}  # fmt: skip
        home = await proxied.get("/", headers={"x-forwarded-user": "carol@example.com"})
        assert home.status_code == 200
        # The proxy adds the header to a forged cross-site post too: writes still need the CSRF token.
        r = await proxied.post("/logout", headers={"x-forwarded-user": "carol@example.com"})
        assert r.status_code == 403
        r = await proxied.post("/logout", headers={"x-forwarded-user": "carol@example.com"},
                               data={"csrf_token": _csrf(home.text)})  # fmt: skip
        assert r.status_code == 303
        assert (await proxied.get("/api/v1/me")).status_code == 401
        r = await proxied.get("/api/v1/me", headers={"x-forwarded-user": "bad name/../"})
        assert r.status_code == 401


async def test_the_header_is_ignored_unless_enabled_or_from_another_address(site: Site) -> None:
    r = await site.client_for(None).get("/api/v1/me", headers={"x-forwarded-user": "admin"})
    assert r.status_code == 401
    auth = Authenticator(
        sessions=site.sessions, secret_key="k", clock=lambda: NOW, trusted_header="X-Forwarded-User",
        trusted_proxies=("10.0.0.1",), cache_seconds=0,
    )  # fmt: skip
    transport = httpx.ASGITransport(app=create_app(site.gateway, auth, clock=lambda: NOW), client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as direct:
        assert (await direct.get("/api/v1/me", headers={"x-forwarded-user": "admin"})).status_code == 401


async def test_any_gateway_with_the_same_secret_serves_a_login_from_another(site: Site) -> None:
    """Stateless: behind a load balancer, the next request may reach another gateway process."""

    def gateway(secret: str) -> httpx.AsyncClient:
        auth = Authenticator(sessions=site.sessions, secret_key=secret, clock=lambda: NOW, cache_seconds=0)
        transport = httpx.ASGITransport(app=create_app(site.gateway, auth, clock=lambda: NOW))
        return httpx.AsyncClient(transport=transport, base_url="http://gw")

    async with gateway("shared") as a, gateway("shared") as b, gateway("other") as c:
        await _login(a, "admin", ADMIN_PASSWORD)
        b.cookies = a.cookies
        c.cookies = a.cookies
        page = await b.get("/dags/dag_0")
        assert page.status_code == 200 and 'id="whoami">admin' in page.text
        r = await a.post("/dags/dag_0/pause", data={"paused": "true", "csrf_token": _csrf(page.text)})
        assert r.status_code == 503  # past the CSRF check and the ACL: no scheduler here
        assert (await c.get("/dags/dag_0")).status_code == 303  # a different key: not logged in


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttled(site: Site) -> FakeClock:
    clock = FakeClock()
    site.app.state.admin.throttle = LoginThrottle(clock=clock)
    return clock


async def test_repeated_wrong_passwords_make_the_next_try_wait_a_little(site: Site) -> None:
    clock = _throttled(site)
    async with site.client_for(None) as browser:
        for before in (0, 0.5, 0.5, 1, 2):  # no wait after the first two failures, then 1 s, 2 s
            clock.now += before
            assert (await _login(browser, "admin", "wrong password")).status_code == 401
        r = await _login(browser, "admin", ADMIN_PASSWORD)  # within 4 s of the fifth failure: even this waits
        assert r.status_code == 429 and "too many failed logins for" in r.text and "lately; try again in 4 s" in r.text
    api = await site.client.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert api.status_code == 429 and api.json()["error"]["code"] == "too_many_attempts"
    entries = await _audit(site, "login")
    assert [e.outcome for e in entries] == ["denied"] * 7  # the refused attempts are audited too


async def test_a_guesser_behind_the_same_proxy_slows_the_real_user_by_seconds_not_minutes(site: Site) -> None:
    """Five wrong passwords used to lock the user out of that address for five minutes."""
    clock = _throttled(site)
    proxy = httpx.ASGITransport(app=site.app, client=("10.0.0.9", 4000))  # everyone comes through it
    async with httpx.AsyncClient(transport=proxy, base_url="http://gw") as guesser:
        for before in (0, 0.1, 0.1, 1, 2):  # each try as soon as it may be made
            clock.now += before
            r = await guesser.post("/api/v1/auth/token", json={"username": "admin", "password": "guess"})
            assert r.status_code == 401
        r = await guesser.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 429 and "try again in 4 s" in r.json()["error"]["message"]
    clock.now += 4
    async with httpx.AsyncClient(transport=proxy, base_url="http://gw") as real_user:
        r = await _login(real_user, "admin", ADMIN_PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/"
    # However long the guessing goes on, a try never waits more than 30 s.
    async with httpx.AsyncClient(transport=proxy, base_url="http://gw") as guesser:
        waits: list[int] = []
        for _ in range(40):
            r = await guesser.post("/api/v1/auth/token", json={"username": "admin", "password": "guess"})
            if r.status_code == 429:  # waits out each wait, as a patient guesser would
                waits.append(int(re.search(r"try again in (\d+) s", r.json()["error"]["message"]).group(1)))  # type: ignore[union-attr]
                clock.now += waits[-1]
            else:
                assert r.status_code == 401
        assert max(waits) == 30 and waits == sorted(waits)
    async with httpx.AsyncClient(transport=proxy, base_url="http://gw") as real_user:
        assert (await _login(real_user, "admin", ADMIN_PASSWORD)).status_code == 303


async def test_csrf_refusals_are_audited(site: Site) -> None:
    async with site.client_for(None) as browser:
        await browser.get("/login")
        r = await browser.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 403
        await _login(browser, "admin", ADMIN_PASSWORD)
        r = await browser.post("/dags/dag_0/pause", data={"paused": "true"})  # a forged cross-site form
        assert r.status_code == 403 and "CSRF" in r.text
        r = await browser.post("/api/v1/dags/dag_0/runs", json={})
        assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    entries = [(e.username, e.dag_id, e.outcome, e.details) for e in await _audit(site, "csrf")]
    assert entries == [
        ("admin", None, "denied", {"method": "POST", "path": "/login"}),
        ("admin", "dag_0", "denied", {"method": "POST", "path": "/dags/dag_0/pause"}),
        ("admin", "dag_0", "denied", {"method": "POST", "path": "/api/v1/dags/dag_0/runs"}),
    ]


async def test_a_flood_of_forged_posts_writes_a_bounded_number_of_audit_rows(site: Site) -> None:
    from gateway.audit import PER_ADDRESS, RefusalLimiter

    clock = FakeClock()
    site.gateway.audit.limiter = RefusalLimiter(clock=clock)
    async with site.client_for(None) as browser:
        for _ in range(15):  # a hostile page posting the login form in a loop
            assert (await browser.post("/login", data={"username": "admin", "password": "x"})).status_code == 403
        assert len(await _audit(site, "csrf")) == PER_ADDRESS
        clock.now += 1
        assert (await browser.post("/login", data={"username": "admin", "password": "x"})).status_code == 403
    rows = sorted(await _audit(site, "csrf"), key=lambda row: row.id)
    assert len(rows) == PER_ADDRESS + 1
    assert rows[-1].details["unrecorded_before"] == 15 - PER_ADDRESS  # the flood is counted, not written


async def test_a_non_admin_listing_users_or_roles_is_refused_and_audited(site: Site) -> None:
    viewer = await site.user("viewer", ["spinner-users"])
    for path in ("/api/v1/users", "/api/v1/roles", "/admin/users"):
        r = await viewer.get(path)
        assert r.status_code == 403 and "only an Admin may list" in r.text
    assert [(e.username, e.outcome) for e in await _audit(site, "user.list")] == [("viewer", "denied")] * 2
    assert [(e.username, e.outcome) for e in await _audit(site, "role.list")] == [("viewer", "denied")]


# --- sessions end on the server's word (issue 14) ------------------------------------------


def _browser_with(site: Site, cookie: str, app: object | None = None) -> httpx.AsyncClient:
    """A browser that kept a copy of a session cookie (stolen, or from before a logout)."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app or site.app), base_url="http://gw")  # type: ignore[arg-type]
    client.cookies.set(SESSION_COOKIE, cookie)
    return client


async def test_logout_ends_every_session_of_the_user_and_the_old_cookie_is_refused(site: Site) -> None:
    async with site.client_for(None) as laptop, site.client_for(None) as phone:
        kept = (await _login(laptop, "admin", ADMIN_PASSWORD)).cookies[SESSION_COOKIE]
        await _login(phone, "admin", ADMIN_PASSWORD)
        home = await laptop.get("/")
        assert 'id="whoami">admin' in home.text and "ends every session" in home.text
        assert (await laptop.post("/logout", data={"csrf_token": _csrf(home.text)})).status_code == 303
        assert (await phone.get("/")).status_code == 303  # the other browser's session is over too
        async with _browser_with(site, kept) as replay:
            r = await replay.get("/dags/dag_0")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
            assert (await replay.get("/api/v1/me")).status_code == 401
        # Logging in again starts a new session, which works.
        await _login(laptop, "admin", ADMIN_PASSWORD)
        assert (await laptop.get("/")).status_code == 200
    logout = await _audit(site, "logout")
    assert [(e.username, e.details) for e in logout] == [("admin", {"sessions": "all ended"})]


async def test_a_password_change_or_disabling_ends_the_users_sessions(site: Site) -> None:
    await site.user("viewer", ["spinner-users"], "viewer-password")
    async with site.client_for(None) as browser:
        kept = (await _login(browser, "viewer", "viewer-password")).cookies[SESSION_COOKIE]
        assert (await browser.get("/")).status_code == 200
        r = await site.client.patch("/api/v1/users/viewer", json={"password": "a-new-password"})
        assert r.status_code == 200
        assert (await browser.get("/")).status_code == 303
        again = (await _login(browser, "viewer", "a-new-password")).cookies[SESSION_COOKIE]
    async with _browser_with(site, kept) as replay:
        assert (await replay.get("/")).status_code == 303
    # Disabled, then enabled again: the sessions from before stay ended.
    assert (await site.client.patch("/api/v1/users/viewer", json={"active": False})).status_code == 200
    assert (await site.client.patch("/api/v1/users/viewer", json={"active": True})).status_code == 200
    async with _browser_with(site, again) as replay:
        assert (await replay.get("/")).status_code == 303
    # A role change alone ends nothing.
    async with site.client_for(None) as browser:
        await _login(browser, "viewer", "a-new-password")
        await site.client.patch("/api/v1/users/viewer", json={"roles": ["spinner-users", "ops"]})
        assert (await browser.get("/")).status_code == 200


async def test_an_admin_changing_their_own_password_ends_their_own_sessions(site: Site) -> None:
    async with site.client_for(None) as browser:
        await _login(browser, "admin", ADMIN_PASSWORD)
        page = await browser.get("/admin/users")
        form = {"csrf_token": _csrf(page.text), "roles": "Admin", "active": "true", "password": "admin-pw-2-xx"}
        r = await browser.post("/admin/users/admin", data=form)
        assert r.status_code == 303
        assert (await browser.get("/")).status_code == 303
        assert (await _login(browser, "admin", "admin-pw-2-xx")).status_code == 303


async def test_a_deleted_users_cookie_is_no_session_of_a_new_user_with_that_name(site: Site) -> None:
    await site.user("temp", ["spinner-users"], "temp-password")
    async with site.client_for(None) as browser:
        kept = (await _login(browser, "temp", "temp-password")).cookies[SESSION_COOKIE]
    assert (await site.client.delete("/api/v1/users/temp")).status_code == 204
    await site.user("temp", ["Admin"], "other-password")  # same name, session version 0 again
    async with _browser_with(site, kept) as replay:
        assert (await replay.get("/")).status_code == 303


async def test_a_cookie_without_a_session_version_is_no_session(site: Site) -> None:
    """A cookie signed before session versions existed (only "u" and "c") no longer logs anyone in."""
    old = URLSafeTimedSerializer("test-secret", salt="spinner-session").dumps({"u": "admin", "c": "x" * 32})
    async with _browser_with(site, old) as replay:
        assert (await replay.get("/")).status_code == 303


async def test_another_gateway_ends_the_session_within_its_cache_seconds(site: Site) -> None:
    """Gateway a logs the user out; gateway b, with a 5 s cache, honours the old cookie at most 5 s more."""
    now = [NOW]
    auth_b = Authenticator(sessions=site.sessions, secret_key="test-secret", clock=lambda: now[0], cache_seconds=5)
    app_b = create_app(site.gateway, auth_b, clock=lambda: now[0])
    async with site.client_for(None) as a:
        kept = (await _login(a, "admin", ADMIN_PASSWORD)).cookies[SESSION_COOKIE]
        async with _browser_with(site, kept, app_b) as b:
            assert (await b.get("/")).status_code == 200  # b caches the user's grants and session version
            home = await a.get("/")
            await a.post("/logout", data={"csrf_token": _csrf(home.text)})
            assert (await b.get("/")).status_code == 200  # still in b's cache
            now[0] += dt.timedelta(seconds=5)
            assert (await b.get("/")).status_code == 303
