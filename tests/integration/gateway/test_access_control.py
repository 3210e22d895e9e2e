"""DAG-level access control and the audit log, through REST, pages and gRPC, per role."""

from __future__ import annotations

import datetime as dt
from hashlib import sha256

import grpc
import pytest
from sqlalchemy import select

from gateway.server import SpinnerApiServicer
from spinner.db import auth as db_auth
from spinner.db.models import AuditLog, DagCode, DagModel, SerializedDagModel
from spinner.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

from .conftest import NOW, Site, add_user


async def _declare(site: Site, dag_id: str, acl: dict[str, list[str]]) -> None:
    """What the scheduler stores when it parses a DAG with this access_control."""
    async with site.sessions() as s, s.begin():
        row = await s.get(SerializedDagModel, dag_id)
        data = {"dag_id": dag_id, "tasks": [], "access_control": acl}
        if row is None:
            s.add(SerializedDagModel(dag_id=dag_id, partition="spinner_tier_1_0", fileloc="f.py", data=data,
                                     dag_hash="h", updated_at=NOW))  # fmt: skip
        else:
            row.data = data


async def _entries(site: Site) -> list[tuple[str, str, str | None, str]]:
    async with site.sessions() as s:
        rows = (await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars()
        return [(a.username, a.action, a.dag_id, a.outcome) for a in rows]


async def test_a_viewer_reads_every_dag_but_may_not_act(site: Site) -> None:
    viewer = await site.user("viewer", ["spinner-users"])
    r = await viewer.get("/api/v1/dags")
    assert [d["dag_id"] for d in r.json()["dags"]] == ["dag_0", "dag_1", "dag_2"]
    assert (await viewer.get("/api/v1/dags/dag_0/runs/manual__1/tasks")).status_code == 200
    for method, path, body in [
        ("POST", "/api/v1/dags/dag_0/runs", {}),
        ("PATCH", "/api/v1/dags/dag_0", {"is_paused": True}),
        ("POST", "/api/v1/dags/dag_0/runs/manual__1/clear", {}),
        ("POST", "/api/v1/dags/dag_0/runs/manual__1/mark", {"state": "success"}),
        ("POST", "/api/v1/dags/dag_0/backfill", {"start": "2026-01-01", "end": "2026-01-02"}),
        ("POST", "/api/v1/dags/dag_0/refresh", None),
    ]:
        r = await viewer.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "forbidden" and "can_dag_edit" in r.json()["error"]["message"]
    page = await viewer.get("/dags/dag_0")
    assert 'id="read-only"' in page.text and 'id="trigger"' not in page.text and "Clear" not in page.text
    refused = [e for e in await _entries(site) if e[0] == "viewer"]
    assert [(a, d, o) for _, a, d, o in refused] == [
        ("trigger", "dag_0", "denied"), ("pause", "dag_0", "denied"), ("clear", "dag_0", "denied"),
        ("mark_success", "dag_0", "denied"), ("backfill", "dag_0", "denied"), ("refresh", "dag_0", "denied"),
    ]  # fmt: skip


async def test_a_user_without_roles_sees_nothing(site: Site) -> None:
    nobody = await site.user("nobody", [])
    assert (await nobody.get("/api/v1/dags")).json() == {"dags": [], "total": 0}
    for path in ("/api/v1/dags/dag_0", "/api/v1/dags/dag_0/runs", "/api/v1/dags/dag_0/runs/manual__1/tasks",
                 "/api/v1/dags/dag_0/runs/manual__1/tasks/extract/logs", "/dags/dag_0"):  # fmt: skip
        r = await nobody.get(path)
        assert r.status_code == 404, path
    # An action on a DAG it may not even read is "not found", and audited as refused.
    assert (await nobody.post("/api/v1/dags/dag_0/runs", json={})).status_code == 404
    assert ("nobody", "trigger", "dag_0", "denied") in await _entries(site)
    home = await nobody.get("/")
    assert "dag_0" not in home.text


async def test_edit_on_one_dag_from_its_access_control(site: Site) -> None:
    await _declare(site, "dag_0", {"team-a": ["can_dag_edit"]})
    await _declare(site, "dag_1", {"team-b": ["can_dag_read"]})
    assert await site.gateway.start() == 2  # the sync at gateway start
    team = await site.user("alice", ["team-a"])
    assert [d["dag_id"] for d in (await team.get("/api/v1/dags")).json()["dags"]] == ["dag_0"]
    # Allowed on dag_0: it reaches the scheduler (none holds the partition here: 503), audited as an error.
    r = await team.post("/api/v1/dags/dag_0/runs", json={})
    assert r.status_code == 503
    assert ("alice", "trigger", "dag_0", "error") in await _entries(site)
    assert (await team.post("/api/v1/dags/dag_1/runs", json={})).status_code == 404
    page = await team.get("/dags/dag_0")
    assert 'id="trigger"' in page.text and "team-a: can_dag_edit" in page.text


async def test_refresh_applies_a_changed_access_control(site: Site) -> None:
    await _declare(site, "dag_0", {"team-a": ["can_dag_edit"]})
    await site.gateway.start()
    team = await site.user("alice", ["team-a"])
    assert (await team.get("/api/v1/dags/dag_0")).json()["can_edit"] is True
    await _declare(site, "dag_0", {"team-a": ["can_dag_read"]})
    r = await site.client.post("/api/v1/dags/dag_0/refresh")
    assert r.status_code == 200 and r.json() == {
        "dag_id": "dag_0", "access_control": {"team-a": ["can_dag_read"]}, "changes": 2,
    }  # fmt: skip
    assert (await team.get("/api/v1/dags/dag_0")).json()["can_edit"] is False
    assert (await team.post("/api/v1/dags/dag_0/runs", json={})).status_code == 403
    assert ("admin", "refresh", "dag_0", "ok") in await _entries(site)


async def test_admin_manages_users_and_roles(site: Site) -> None:
    r = await site.client.post("/api/v1/users", json={"username": "bob", "roles": ["spinner-users"]})
    assert r.status_code == 201 and len(r.json()["password"]) >= 12  # made for him, shown once
    password = r.json()["password"]
    r = await site.client.put("/api/v1/roles/ops", json={"permissions": [{"action": "can_dag_edit", "dag_id": "*"}]})
    assert r.status_code == 200 and r.json()["permissions"] == [{"action": "can_dag_edit", "resource": "DAG:*"}]
    r = await site.client.patch("/api/v1/users/bob", json={"roles": ["spinner-users", "ops"]})
    assert r.json()["roles"] == ["ops", "spinner-users"]
    token = await site.client_for(None).post("/api/v1/auth/token", json={"username": "bob", "password": password})
    bob = site.client_for(token.json()["token"])
    assert (await bob.post("/api/v1/dags/dag_2/runs", json={})).status_code == 503  # allowed, no scheduler
    assert (await bob.get("/api/v1/users")).status_code == 403
    assert (await bob.put("/api/v1/roles/ops", json={})).status_code == 403
    assert (await bob.put("/api/v1/pools/p", json={"slots": 1})).status_code == 403
    assert (await site.client.post("/api/v1/users", json={"username": "bob"})).status_code == 409
    assert (await site.client.delete("/api/v1/roles/Admin")).status_code == 400
    assert (await site.client.delete("/api/v1/users/admin")).status_code == 400
    assert (await site.client.delete("/api/v1/roles/ops")).status_code == 204
    assert (await site.client.delete("/api/v1/users/bob")).status_code == 204
    assert (await bob.get("/api/v1/dags")).status_code == 401
    actions = [(u, a, o) for u, a, _, o in await _entries(site) if a.startswith(("user.", "role.", "pool."))]
    assert ("admin", "user.create", "ok") in actions and ("bob", "user.list", "denied") in actions  # every refusal
    assert ("bob", "role.put", "denied") in actions and ("bob", "pool.set", "denied") in actions
    assert ("admin", "user.delete", "ok") in actions and ("admin", "role.delete", "ok") in actions


async def test_the_audit_log_shows_each_user_what_they_may_read(site: Site) -> None:
    await _declare(site, "dag_1", {"team-b": ["can_dag_read"]})
    await site.gateway.start()
    viewer = await site.user("viewer", ["spinner-users"])
    async with site.sessions() as s, s.begin():
        # dag_1 readable by team-b only: take the default read-everything away from spinner-users.
        await db_auth.revoke(s, "spinner-users", "can_dag_read", "DAG:*")
        await db_auth.grant(s, "spinner-users", "can_dag_read", "DAG:dag_0")
    await viewer.post("/api/v1/dags/dag_0/runs", json={})
    await site.client.post("/api/v1/dags/dag_1/runs", json={})
    await site.client.post("/api/v1/users", json={"username": "zed"})
    mine = (await viewer.get("/api/v1/audit")).json()
    assert [(e["username"], e["action"], e["dag_id"]) for e in mine["entries"]] == [("viewer", "trigger", "dag_0")]
    entry = mine["entries"][0]
    assert entry["outcome"] == "denied" and entry["remote_addr"] == "127.0.0.1" and entry["ts"]
    everything = (await site.client.get("/api/v1/audit", params={"username": "admin"})).json()
    assert {(e["action"], e["dag_id"]) for e in everything["entries"]} == {("trigger", "dag_1"), ("user.create", None)}
    page = await viewer.get("/audit")
    assert page.status_code == 200 and 'data-action="trigger"' in page.text and "user.create" not in page.text


def _md(token: str) -> tuple[tuple[str, str], ...]:
    """The metadata a client sends with every call."""
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def grpc_address(site: Site):
    server = grpc.aio.server()
    servicer = SpinnerApiServicer(site.gateway, site.auth, watch_interval=0.05)
    gateway_pb2_grpc.add_SpinnerApiServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_grpc_calls_are_checked_per_role(site: Site, grpc_address: str) -> None:
    viewer = await add_user(site.sessions, "viewer", ["spinner-users"])
    nobody = await add_user(site.sessions, "nobody", [])
    async with grpc.aio.insecure_channel(grpc_address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await gateway_pb2_grpc.SpinnerApiStub(ch).ListDags(gateway_pb2.ListDagsRequest())
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(grpc_address) as ch:
        stub = gateway_pb2_grpc.SpinnerApiStub(ch)
        assert (await stub.GetDag(gateway_pb2.GetDagRequest(dag_id="dag_0"), metadata=_md(viewer))).tier == 1
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.TriggerDag(gateway_pb2.TriggerDagRequest(dag_id="dag_0"), metadata=_md(viewer))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with grpc.aio.insecure_channel(grpc_address) as ch:
        stub = gateway_pb2_grpc.SpinnerApiStub(ch)
        assert (await stub.ListDags(gateway_pb2.ListDagsRequest(), metadata=_md(nobody))).total == 0
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await stub.GetDagRun(
                gateway_pb2.GetDagRunRequest(run=common_pb2.DagRunRef(dag_id="dag_0", run_id="manual__1")),
                metadata=_md(nobody),
            )
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    audit = [(u, a, o) for u, a, _, o in await _entries(site)]
    assert ("viewer", "trigger", "denied") in audit


async def test_grpc_watch_streams_a_run_until_it_ends(site: Site, grpc_address: str) -> None:
    token = await add_user(site.sessions, "viewer", ["spinner-users"])
    async with grpc.aio.insecure_channel(grpc_address) as ch:
        stub = gateway_pb2_grpc.SpinnerApiStub(ch)
        events = [e async for e in stub.WatchDagRun(
            gateway_pb2.WatchDagRunRequest(run=common_pb2.DagRunRef(dag_id="dag_0", run_id="manual__1")), metadata=_md(token)
        )]  # fmt: skip
    assert len(events) == 1 and events[0].run.state == "success"
    assert {t.task_id: t.state for t in events[0].task_instances} == {"extract": "success", "load": "failed"}


async def test_dag_list_filters_search_and_pages(site: Site) -> None:
    from spinner.db.models import DagModel, DagRun

    async with site.sessions() as s, s.begin():
        dag = await s.get(DagModel, "dag_1")
        assert dag is not None
        dag.tags, dag.owner, dag.is_paused, dag.tier, dag.partition = (
            ["finance", "x_y"],
            "ann",
            True,
            2,
            "spinner_tier_2_0",
        )
        s.add(DagRun(dag_id="dag_2", run_id="r1", run_type="manual", state="failed", logical_date=NOW,
                     partition="spinner_tier_1_0", created_at=NOW))  # fmt: skip
        s.add(DagRun(dag_id="dag_0", run_id="r0", run_type="manual", state="failed",
                     logical_date=NOW - dt.timedelta(days=1), partition="spinner_tier_1_0", created_at=NOW))  # fmt: skip

    async def ids(**params: object) -> list[str]:
        r = await site.client.get("/api/v1/dags", params=params)
        assert r.status_code == 200, r.text
        return [d["dag_id"] for d in r.json()["dags"]]

    assert await ids(search="dag_1") == ["dag_1"]
    assert await ids(search="ANN") == ["dag_1"]  # owner, any case
    assert await ids(search="%") == []  # wildcards are literal
    assert await ids(tier=2) == ["dag_1"] and await ids(partition="spinner_tier_1_0") == ["dag_0", "dag_2"]
    assert await ids(tag="finance") == ["dag_1"] and await ids(tag="x") == ["dag_0", "dag_2"]
    assert await ids(tag="x_") == [] and await ids(owner="ann") == ["dag_1"]
    assert await ids(paused="true") == ["dag_1"] and await ids(paused="false") == ["dag_0", "dag_2"]
    assert await ids(failing="true") == ["dag_2"]  # dag_0's newest run succeeded
    assert await ids(failing="false") == ["dag_0", "dag_1"]
    assert (await site.client.get("/api/v1/dags", params={"paused": "maybe"})).status_code == 400
    page = await site.client.get("/", params={"per_page": 2, "page": 2})
    assert "page 2 of 2" in page.text and 'href="/dags/dag_2"' in page.text and 'href="/dags/dag_0"' not in page.text
    page = await site.client.get("/", params={"search": "dag_1", "failing": "false"})
    assert 'href="/dags/dag_1"' in page.text and 'href="/dags/dag_0"' not in page.text


async def test_import_errors_show_only_files_whose_dags_the_user_may_read(site: Site) -> None:
    from spinner.db.models import ImportError_

    await _declare(site, "dag_0", {"team-a": ["can_dag_read"]})
    assert await site.gateway.start() == 1
    async with site.sessions() as s, s.begin():
        for filename in ("spinner_tier_1_0/t/d0.py", "spinner_tier_1_0/t/d1.py", "spinner_tier_1_0/t/new.py"):
            s.add(
                ImportError_(partition="spinner_tier_1_0", filename=filename, stacktrace="SyntaxError", timestamp=NOW)
            )
    team = await site.user("alice", ["team-a"])
    names = [e["filename"] for e in (await team.get("/api/v1/import-errors")).json()["import_errors"]]
    assert names == ["spinner_tier_1_0/t/d0.py"]  # not dag_1's file, nor a file with no DAG to read
    assert "t/d1.py" not in (await team.get("/")).text
    viewer = await site.user("viewer", ["spinner-users"])
    everything = (await viewer.get("/api/v1/import-errors")).json()["import_errors"]
    assert len(everything) == 3


async def _two_dags_in_one_file(site: Site) -> None:
    """dag_0's file (spinner_tier_1_0/t/d0.py) also defines `sibling`; team-a may read dag_0 only."""
    async with site.sessions() as s, s.begin():
        s.add(
            DagModel(
                dag_id="sibling", partition="spinner_tier_1_0", fileloc="spinner_tier_1_0/t/d0.py", tier=1,
                schedule=None, is_paused=False, is_active=True, owner="secret-team", description="", tags=["sibling-tag"],
                bundle_version="v1",
            )
        )  # fmt: skip
        s.add(
            DagCode(
                fileloc_hash=sha256(b"spinner_tier_1_0/t/d0.py").hexdigest(), fileloc="spinner_tier_1_0/t/d0.py",
                source_code="dag_0 = DAG('dag_0')\nsibling = DAG('sibling')  # SECRET_TOKEN=abc\n", updated_at=NOW,
            )
        )  # fmt: skip
    await _declare(site, "dag_0", {"team-a": ["can_dag_read"], "team-b": ["can_dag_read"]})
    await _declare(site, "sibling", {"team-b": ["can_dag_read"]})
    await site.gateway.start()


async def test_the_code_view_refuses_a_file_that_also_defines_a_dag_the_user_may_not_read(site: Site) -> None:
    await _two_dags_in_one_file(site)
    alice = await site.user("alice", ["team-a"])  # reads dag_0, not sibling
    page = await alice.get("/dags/dag_0")
    assert page.status_code == 200
    assert "SECRET_TOKEN" not in page.text and "sibling" not in page.text
    assert (
        'id="code-refused">The code of DAG &#39;dag_0&#39; is not shown: its file spinner_tier_1_0/t/d0.py also '
        "defines 1 DAG(s) you may not read." in page.text
    )
    assert ("alice", "code.view", "dag_0", "denied") in await _entries(site)
    # Who may read every DAG of the file sees it, and nothing is refused.
    for who, roles in (("bob", ["team-b"]), ("admin", None)):
        client = site.client if roles is None else await site.user(who, roles)
        page = await client.get("/dags/dag_0")
        assert page.status_code == 200 and "SECRET_TOKEN=abc" in page.text and 'id="code-refused"' not in page.text
    assert [e for e in await _entries(site) if e[1] == "code.view"] == [("alice", "code.view", "dag_0", "denied")]


async def test_the_index_filters_offer_only_owners_and_tags_of_readable_dags(site: Site) -> None:
    await _two_dags_in_one_file(site)
    alice = await site.user("alice", ["team-a"])  # reads dag_0, not sibling
    home = await alice.get("/")
    assert home.status_code == 200
    assert "<option >team</option>" in home.text and "<option >x</option>" in home.text
    assert "secret-team" not in home.text and "sibling-tag" not in home.text
    nobody = await site.user("nobody", [])
    home = await nobody.get("/")
    assert "<option >team</option>" not in home.text and "<option >spinner_tier_1_0</option>" not in home.text
    home = await site.client.get("/")  # the admin reads every DAG
    assert "<option >secret-team</option>" in home.text and "<option >sibling-tag</option>" in home.text


async def test_an_admins_grant_on_a_dag_outlives_the_sync_of_its_access_control(site: Site) -> None:
    """Grants made through the admin API and grants from the DAG file are kept apart; a user may do either's."""
    await _declare(site, "dag_0", {"team-a": ["can_dag_edit"]})
    await site.gateway.start()
    r = await site.client.put(
        "/api/v1/roles/auditors", json={"permissions": [{"action": "can_dag_read", "dag_id": "dag_0"}]}
    )
    assert r.status_code == 200
    auditor = await site.user("carol", ["auditors"])
    editor = await site.user("alice", ["team-a"])
    assert (await auditor.get("/api/v1/dags/dag_0")).status_code == 200

    # A user with only edit rights re-syncs dag_0's declared access_control, which does not name auditors.
    assert (await editor.post("/api/v1/dags/dag_0/refresh")).status_code == 200
    assert (await auditor.get("/api/v1/dags/dag_0")).status_code == 200

    # The file names auditors too, then drops them and team-a: only the synced grants go.
    await _declare(site, "dag_0", {"team-a": ["can_dag_edit"], "auditors": ["can_dag_read", "can_dag_edit"]})
    assert (await editor.post("/api/v1/dags/dag_0/refresh")).status_code == 200
    assert (await auditor.get("/api/v1/dags/dag_0")).json()["can_edit"] is True
    await _declare(site, "dag_0", {})
    assert (await site.client.post("/api/v1/dags/dag_0/refresh")).json()["changes"] == 3
    assert (await auditor.get("/api/v1/dags/dag_0")).json()["can_edit"] is False
    assert (await editor.get("/api/v1/dags/dag_0")).status_code == 404

    roles = {r["name"]: r for r in (await site.client.get("/api/v1/roles")).json()["roles"]}
    assert roles["auditors"]["permissions"] == [{"action": "can_dag_read", "resource": "DAG:dag_0"}]
    assert roles["auditors"]["from_dag_files"] == [] and roles["team-a"]["from_dag_files"] == []


async def test_the_admin_api_changes_only_admin_grants(site: Site) -> None:
    await _declare(site, "dag_0", {"team-a": ["can_dag_edit"]})
    await site.gateway.start()
    editor = await site.user("alice", ["team-a"])
    r = await site.client.get("/api/v1/roles")
    team = next(x for x in r.json()["roles"] if x["name"] == "team-a")
    assert team == {"name": "team-a", "permissions": [],
                    "from_dag_files": [{"action": "can_dag_edit", "resource": "DAG:dag_0"}]}  # fmt: skip
    # Saving the role with an empty list (what the roles page sends) leaves the DAG file's grant alone.
    r = await site.client.put(
        "/api/v1/roles/team-a", json={"permissions": [{"action": "can_dag_edit", "dag_id": "dag_0"}]}
    )
    assert (
        r.json()["permissions"] == r.json()["from_dag_files"] == [{"action": "can_dag_edit", "resource": "DAG:dag_0"}]
    )
    r = await site.client.put("/api/v1/roles/team-a", json={"permissions": []})
    assert r.json()["permissions"] == [] and len(r.json()["from_dag_files"]) == 1
    assert (await editor.get("/api/v1/dags/dag_0")).json()["can_edit"] is True
    page = await site.client.get("/admin/roles")
    assert "From DAG files: <code>can_dag_edit dag_0</code>" in page.text
