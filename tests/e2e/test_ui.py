"""The web UI in Debian's headless Chromium, over a whole Spinner running real task processes.

An admin logs in, finds a DAG, triggers it, watches the run turn green, reads a log and the
audit entry. Then, per role, what a user without edit may not see or do, in the UI and the APIs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from spinner.v1 import gateway_pb2, gateway_pb2_grpc
from tests.integration.gateway.live import ADMIN_PASSWORD, Live, live_spinner

pytestmark = pytest.mark.e2e
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_spinner(Path(tmp_path_factory.mktemp("ui")), backend="local") as spinner:
        yield spinner


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def login(browser: Browser, live: Live, username: str, password: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(live.url + "/")
    page.wait_for_url("**/login**")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login")
    page.wait_for_selector("#dags")
    return page


def test_admin_triggers_a_run_watches_it_turn_green_and_finds_it_in_the_audit_log(
    live: Live, browser: Browser, tmp_path: Path
) -> None:
    page = login(browser, live, "admin", ADMIN_PASSWORD)
    assert page.inner_text("#whoami") == "admin (Admin)"
    listed = page.locator("#dags a").all_inner_texts()
    assert "tutorial" in listed and "team_dag" in listed

    page.fill("#search", "team")
    page.click("#apply-filters")
    page.wait_for_url("**search=team**")
    assert page.locator("#dags a").all_inner_texts() == ["team_dag"]
    page.goto(live.url + "/?search=tutorial")
    page.click('#dags a:text-is("tutorial")')
    page.wait_for_url("**/dags/tutorial")

    page.click("#trigger")
    page.wait_for_selector("#msg")
    run_id = re.search(r"triggered run (\S+)", page.inner_text("#msg")).group(1)  # type: ignore[union-attr]
    # The page reloads itself while the run is going; five green cells when it is done.
    cells = page.locator(f'#grid a[title*="{run_id}"][data-state="success"]')
    cells.nth(4).wait_for(timeout=90_000)
    assert cells.count() == 5
    assert page.locator('#graph g.node[data-state="success"]').count() == 5
    assert page.locator("#gantt rect.bar").count() == 5
    page.screenshot(path=str(tmp_path / "dag.png"), full_page=True)

    page.locator(f'#grid a[title^="templated · {run_id}"]').click()
    page.wait_for_selector("#log")
    assert "hello from tutorial" in page.inner_text("#log")

    page.click("text=Audit log")
    row = page.locator('#audit tr[data-action="trigger"]').first
    assert "tutorial" in row.inner_text() and "admin" in row.inner_text()
    assert row.get_attribute("data-outcome") == "ok"


ROLES = {
    # role(s): (DAGs listed, may act on team_dag, may act on tutorial)
    "viewer": (["spinner-users"], ["team_dag", "tutorial"], False, False),
    "teammate": (["team-a"], ["team_dag"], True, False),
    "outsider": ([], [], False, False),
}


@pytest.mark.parametrize("who", sorted(ROLES))
def test_what_each_role_may_see_and_do(live: Live, browser: Browser, who: str) -> None:
    roles, listed, edit_team, edit_tutorial = ROLES[who]
    password = f"{who}-password"
    token = live.user(who, roles, password)
    page = login(browser, live, who, password)

    # The DAG list shows only what the roles may read.
    assert sorted(page.locator("#dags a").all_inner_texts()) == listed
    for dag_id, may_edit in (("team_dag", edit_team), ("tutorial", edit_tutorial)):
        response = page.goto(f"{live.url}/dags/{dag_id}")
        assert response is not None
        if dag_id not in listed:
            assert response.status == 404 and "not found" in page.inner_text("#error-message")
            assert live.api("GET", f"/dags/{dag_id}", token).status_code == 404
            continue
        assert page.locator("#trigger").count() == (1 if may_edit else 0)
        assert page.locator("#read-only").count() == (0 if may_edit else 1)
        if not may_edit:
            # Posting the form anyway (with a valid CSRF token) is refused, and so is the API.
            csrf = page.locator('input[name="csrf_token"]').first.get_attribute("value")
            refused = page.request.post(f"{live.url}/dags/{dag_id}/trigger", form={"csrf_token": csrf or ""})
            assert refused.status == 403
            assert live.api("POST", f"/dags/{dag_id}/runs", token, json={}).status_code == 403
            with grpc.insecure_channel(live.grpc_address) as ch, pytest.raises(grpc.RpcError) as denied:
                gateway_pb2_grpc.SpinnerApiStub(ch).TriggerDag(
                    gateway_pb2.TriggerDagRequest(dag_id=dag_id), metadata=(("authorization", f"Bearer {token}"),)
                )
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]

    # No admin pages, and the audit log holds only what the user may read.
    assert page.locator('header a[href="/admin/users"]').count() == 0
    assert page.goto(f"{live.url}/admin/users").status == 403  # type: ignore[union-attr]
    assert live.api("GET", "/users", token).status_code == 403
    page.goto(f"{live.url}/audit")
    users = set(page.locator("#audit tr[data-action] td:nth-child(2)").all_inner_texts())
    if not listed:
        assert users <= {who}
    refused_here = page.locator('#audit tr[data-outcome="denied"]').all_inner_texts()
    tried = [d for d, e in (("team_dag", edit_team), ("tutorial", edit_tutorial)) if d in listed and not e]
    for dag_id in tried:  # each refusal above is there: the form, the REST call and the gRPC call
        assert sum(who in text and "trigger" in text and dag_id in text for text in refused_here) == 3
