"""Variables and connections over REST and the web UI: Admin only, encrypted at rest, every change and refusal audited."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from gateway.app import create_app
from spinner.db.models import AuditLog
from spinner.fernet import SecretBox, new_key

from .conftest import ADMIN_PASSWORD, NOW, Site, add_user

KEY = new_key()


class Api:
    def __init__(self, site: Site, app: Any, admin: httpx.AsyncClient, user: httpx.AsyncClient) -> None:
        self.site, self.app, self.admin, self.user = site, app, admin, user

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")

    async def audit(self, action: str) -> list[AuditLog]:
        async with self.site.sessions() as s:
            q = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
            return list((await s.execute(q)).scalars())


def _app(site: Site, key: str | None) -> Any:
    return create_app(site.gateway, site.auth, clock=lambda: NOW, secret_box=SecretBox(key) if key else None)


def _client(app: Any, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw", headers={"authorization": f"Bearer {token}"}
    )


@pytest.fixture
async def api(site: Site) -> AsyncIterator[Api]:
    app = _app(site, KEY)
    admin_token = (await site.client.post("/api/v1/users/admin/tokens", json={"name": "t"})).json()["token"]
    user_token = await add_user(site.sessions, "viewer", ["spinner-users"])
    async with _client(app, admin_token) as admin, _client(app, user_token) as user:
        yield Api(site, app, admin, user)


async def test_an_admin_sets_reads_lists_and_deletes_a_variable_stored_encrypted(api: Api) -> None:
    r = await api.admin.put("/api/v1/variables/db_password", json={"value": "hunter2-pw", "description": "warehouse"})
    assert r.status_code == 201 and r.json() == {"key": "db_password", "created": True}
    r = await api.admin.put("/api/v1/variables/db_password", json={"value": "hunter3-pw"})
    assert r.status_code == 200 and r.json()["created"] is False
    got = (await api.admin.get("/api/v1/variables/db_password")).json()
    assert (got["value"], got["description"], got["updated_by"]) == ("hunter3-pw", "warehouse", "admin")
    listed = (await api.admin.get("/api/v1/variables")).json()["variables"]
    assert listed == [
        {"key": "db_password", "description": "warehouse", "updated_at": NOW.isoformat(), "updated_by": "admin",
         "sensitive": True}
    ]  # fmt: skip
    async with api.site.sessions() as s:
        stored = (await s.execute(text("SELECT val FROM variable WHERE `key` = 'db_password'"))).scalar_one()
    assert "hunter3" not in stored and SecretBox(KEY).decrypt(stored, "v") == "hunter3-pw"

    assert (await api.admin.delete("/api/v1/variables/db_password")).status_code == 204
    r = await api.admin.get("/api/v1/variables/db_password")
    assert r.status_code == 404 and "not found" in r.json()["error"]["message"]
    sets = await api.audit("variable.set")
    assert [(a.username, a.outcome, a.details) for a in sets] == [("admin", "ok", {"key": "db_password"})] * 2
    assert [a.outcome for a in await api.audit("variable.delete")] == ["ok"]
    assert [a.outcome for a in await api.audit("variable.get")] == ["ok", "error"]
    assert not any("hunter" in str(a.details) for a in await api.audit("variable.get"))


async def test_a_non_admin_can_neither_read_nor_change_and_each_refusal_is_audited(api: Api) -> None:
    await api.admin.put("/api/v1/variables/token", json={"value": "t-123456"})
    await api.admin.put("/api/v1/connections/db", json={"uri": "postgres://u:pw-123456@h/d"})
    calls = [
        ("GET", "/api/v1/variables", None), ("GET", "/api/v1/variables?include_values=true", None),
        ("GET", "/api/v1/variables/token", None), ("PUT", "/api/v1/variables/token", {"value": "mine"}),
        ("DELETE", "/api/v1/variables/token", None), ("POST", "/api/v1/variables", {"variables": {"a": "b"}}),
        ("GET", "/api/v1/connections", None), ("GET", "/api/v1/connections/db", None),
        ("PUT", "/api/v1/connections/db", {"uri": "http://evil"}), ("DELETE", "/api/v1/connections/db", None),
        ("POST", "/api/v1/connections", {"connections": {}}),
    ]  # fmt: skip
    for method, path, body in calls:
        r = await api.user.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert "only an Admin" in r.json()["error"]["message"]
        assert "t-123456" not in r.text and "pw-123456" not in r.text
    async with api.site.sessions() as s:
        q = select(AuditLog.action).where(AuditLog.username == "viewer", AuditLog.outcome == "denied")
        denied = sorted((await s.execute(q)).scalars())
    assert denied == sorted([
        "variable.list", "variable.export", "variable.get", "variable.set", "variable.delete", "variable.import",
        "connection.list", "connection.get", "connection.set", "connection.delete", "connection.import",
    ])  # fmt: skip
    assert (await api.admin.get("/api/v1/variables/token")).json()["value"] == "t-123456"  # nothing changed


async def test_connections_from_a_uri_or_fields_with_the_password_only_on_get(api: Api) -> None:
    r = await api.admin.put(
        "/api/v1/connections/warehouse",
        json={"uri": "mysql://etl:p%40ss-w0rd@wh.internal:3306/sales?charset=utf8", "description": "dwh"},
    )
    assert r.status_code == 201
    r = await api.admin.put(
        "/api/v1/connections/api",
        json={"conn_type": "http", "host": "api.example.com", "port": 443, "extra": {"timeout": "30"}},
    )
    assert r.status_code == 201
    wh = (await api.admin.get("/api/v1/connections/warehouse")).json()
    assert (wh["conn_type"], wh["host"], wh["port"], wh["schema"], wh["login"], wh["password"]) == (
        "mysql", "wh.internal", 3306, "sales", "etl", "p@ss-w0rd",
    )  # fmt: skip
    assert wh["extra"] == '{"charset": "utf8"}' and wh["description"] == "dwh"
    assert wh["uri"] == "mysql://etl:p%40ss-w0rd@wh.internal:3306/sales?charset=utf8"
    listed = (await api.admin.get("/api/v1/connections")).json()["connections"]
    assert [(c["conn_id"], c["has_password"], c["has_extra"]) for c in listed] == [
        ("api", False, True), ("warehouse", True, True),
    ]  # fmt: skip
    assert "p@ss" not in str(listed)
    async with api.site.sessions() as s:
        row = (await s.execute(text("SELECT password, extra, host FROM connection WHERE conn_id = 'warehouse'"))).one()
    assert "p@ss" not in row[0] and "charset" not in row[1] and row[2] == "wh.internal"
    details = [a.details for a in await api.audit("connection.set")]
    assert details == [{"conn_id": "warehouse", "conn_type": "mysql"}, {"conn_id": "api", "conn_type": "http"}]


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("PUT", "/api/v1/variables/bad%20key", {"value": "x"}, "key must be 1-250 letters"),
        ("PUT", "/api/v1/variables/k", {"value": None}, "must be a string or JSON, not null"),
        ("PUT", "/api/v1/variables/k", {}, '{"value"'),
        ("PUT", "/api/v1/variables/k", {"value": "x", "other": 1}, "unknown field"),
        ("PUT", "/api/v1/variables/k", {"value": "x", "description": 3}, "description must be a string"),
        ("PUT", "/api/v1/connections/c", {"uri": "no-scheme"}, "not a connection URI"),
        ("PUT", "/api/v1/connections/c", {"uri": "http://h", "host": "x"}, "either a uri or its fields"),
        ("PUT", "/api/v1/connections/c", {"conn_type": "http", "port": 70000}, "port must be"),
        ("PUT", "/api/v1/connections/c", {"conn_type": "http", "extra": "[1]"}, "extra must be a JSON object"),
        ("PUT", "/api/v1/connections/c", {"host": "h"}, "conn_type is required"),
        ("POST", "/api/v1/variables", {"variables": [1]}, "variables must be an object"),
        ("POST", "/api/v1/variables", {"variables": {}, "on_existing": "merge"}, "on_existing must be one of"),
        ("POST", "/api/v1/connections", {"connections": {"c": 5}}, "must be a URI or an object"),
    ],
)
async def test_bad_input_is_a_400_with_a_clear_message(
    api: Api, method: str, path: str, body: Any, message: str
) -> None:
    r = await api.admin.request(method, path, json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


async def test_import_and_export_round_trip_and_a_refused_import_writes_nothing(api: Api) -> None:
    await api.admin.put("/api/v1/variables/env", json={"value": "prod"})
    r = await api.admin.post(
        "/api/v1/variables", json={"variables": {"env": "dev", "limits": {"rows": 5}, "n": 3}, "on_existing": "skip"}
    )
    assert r.json() == {"imported": ["limits", "n"], "skipped": ["env"]}
    r = await api.admin.post("/api/v1/variables", json={"variables": {"env": "dev", "new": "x"}, "on_existing": "fail"})
    assert r.status_code == 409 and "env" in r.json()["error"]["message"]
    exported = (await api.admin.get("/api/v1/variables?include_values=true")).json()["variables"]
    assert {v["key"]: v["value"] for v in exported} == {"env": "prod", "limits": '{"rows": 5}', "n": "3"}

    conns = {"db": "postgres://u:pw-1234@db:5432/app", "api": {"conn_type": "http", "host": "h", "password": "k-5678"}}
    r = await api.admin.post("/api/v1/connections", json={"connections": conns})
    assert r.json() == {"imported": ["api", "db"], "skipped": []}
    exported = (await api.admin.get("/api/v1/connections?include_secrets=true")).json()["connections"]
    assert {c["conn_id"]: c["password"] for c in exported} == {"api": "k-5678", "db": "pw-1234"}
    assert [a.outcome for a in await api.audit("variable.import")] == ["ok", "error"]
    assert [a.outcome for a in await api.audit("variable.export")] == ["ok"]
    assert [a.outcome for a in await api.audit("connection.export")] == ["ok"]


async def test_a_value_stored_with_another_key_is_a_clear_error_and_no_key_is_a_503(api: Api) -> None:
    await api.admin.put("/api/v1/variables/old", json={"value": "v"})
    token = (await api.site.client.post("/api/v1/users/admin/tokens", json={"name": "t2"})).json()["token"]
    async with _client(_app(api.site, new_key()), token) as other:
        r = await other.get("/api/v1/variables/old")
        assert r.status_code == 409
        assert "cannot be decrypted with this service's Fernet key" in r.json()["error"]["message"]
    async with _client(_app(api.site, None), token) as none:
        r = await none.get("/api/v1/variables")
        assert r.status_code == 503 and "no Fernet key" in r.json()["error"]["message"]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def _login(browser: httpx.AsyncClient, username: str, password: str) -> None:
    page = await browser.get("/login")
    r = await browser.post(
        "/login", data={"username": username, "password": password, "csrf_token": _csrf(page.text), "next": "/"}
    )
    assert r.status_code == 303, r.text


async def test_the_admin_pages_set_and_delete_with_the_csrf_token_and_refuse_others(api: Api) -> None:
    async with api.browser() as browser:
        await _login(browser, "admin", ADMIN_PASSWORD)
        page = await browser.get("/admin/variables")
        assert page.status_code == 200 and 'id="set-variable"' in page.text
        r = await browser.post("/admin/variables", data={"key": "region", "value": "eu-west-1"})
        assert r.status_code == 403  # no CSRF token
        r = await browser.post(
            "/admin/variables", data={"key": "region", "value": "eu-west-1", "csrf_token": _csrf(page.text)}
        )
        assert r.status_code == 303 and "saved+variable+region" in r.headers["location"]
        page = await browser.get("/admin/variables")
        assert 'data-key="region"' in page.text and "eu-west-1" not in page.text
        page = await browser.get("/admin/connections")
        form = {"conn_id": "db", "uri": "postgres://u:pw-9876@db/app", "csrf_token": _csrf(page.text)}
        assert (await browser.post("/admin/connections", data=form)).status_code == 303
        form = {"conn_id": "api", "conn_type": "http", "host": "h", "port": "x", "csrf_token": _csrf(page.text)}
        r = await browser.post("/admin/connections", data=form)
        assert r.status_code == 400 and "port must be a whole number" in r.text
        page = await browser.get("/admin/connections")
        assert 'data-conn="db"' in page.text and "pw-9876" not in page.text
        form = {"conn_id": "db", "delete": "true", "csrf_token": _csrf(page.text)}
        assert (await browser.post("/admin/connections", data=form)).status_code == 303
        assert 'data-conn="db"' not in (await browser.get("/admin/connections")).text
    await add_user(api.site.sessions, "viewer2", ["spinner-users"], password="viewer-password")
    async with api.browser() as browser:
        await _login(browser, "viewer2", "viewer-password")
        assert "/admin/variables" not in (await browser.get("/")).text  # no link for non-admins
        assert (await browser.get("/admin/variables")).status_code == 403
        assert (await browser.get("/admin/connections")).status_code == 403
    assert [a.username for a in await api.audit("variable.list") if a.outcome == "denied"] == ["viewer2"]
