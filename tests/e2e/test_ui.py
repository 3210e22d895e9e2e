"""The web UI in Debian's headless Chromium, over a whole Spinner running real task processes.

An admin logs in, finds a DAG, triggers it, watches the run turn green, reads a log and the
audit entry. Then, per role, what a user without edit may not see or do, in the UI and the APIs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import grpc
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from spinner.v1 import gateway_pb2, gateway_pb2_grpc
from tests.integration.gateway.live import ADMIN_PASSWORD, Live, live_spinner

pytestmark = pytest.mark.e2e
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


# A task that writes its log in steps, each step waiting for a file the test creates.
STEPPED_DAG = """
from spinner import DAG, BashOperator, Tier
with DAG("stepped_log", tier=Tier.TIER1, schedule=None) as dag:
    BashOperator(task_id="steps", bash_command=(
        "for i in $(seq 1 80); do echo early line $i; done; "
        "while [ ! -e {gates}/one ]; do sleep 0.1; done; "
        "for i in $(seq 1 80); do echo middle line $i; done; "
        "while [ ! -e {gates}/two ]; do sleep 0.1; done; "
        "echo last line"
    ))
"""
# Its readiness checks fail: the requirements file it names is not in the DAG snapshot.
UNREADY_DAG = """
from spinner import DAG, BashOperator, Tier
with DAG("unready", tier=Tier.TIER1, schedule=None) as dag:
    BashOperator(task_id="never_runs", bash_command="echo this never runs",
                 executor_config={"env": {"SPINNER_REQUIREMENTS": "requirements/missing.txt"}})
"""


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("gates"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, gates: Path) -> Iterator[Live]:
    extra = {"stepped_log.py": STEPPED_DAG.format(gates=gates), "unready.py": UNREADY_DAG}
    dags = ("tutorial", "team_dag", "stepped_log", "unready")
    with live_spinner(Path(tmp_path_factory.mktemp("ui")), backend="local", dags=dags, extra_dags=extra) as spinner:
        yield spinner


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# Every page records what its Content-Security-Policy blocked (an inline script without the nonce). The
# waits use expect(), not wait_for_function("..."): the latter evals its string, which the CSP refuses.
CSP_WATCH = (
    "window.cspViolations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));"
)


def csp_violations(page: Page) -> list[str]:
    return list(page.evaluate("window.cspViolations"))


def login(browser: Browser, live: Live, username: str, password: str) -> Page:
    context = browser.new_context()
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
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
    assert csp_violations(page) == []


ROLES = {
    # role(s): (DAGs listed, may act on team_dag, may act on tutorial)
    "viewer": (["spinner-users"], ["stepped_log", "team_dag", "tutorial", "unready"], False, False),
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


def _trigger(live: Live, dag_id: str) -> str:
    r = live.api("POST", f"/dags/{dag_id}/runs", json={})
    assert r.status_code == 201, r.text
    return str(r.json()["run_id"])


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _log_text(live: Live, dag_id: str, run_id: str, task_id: str) -> str:
    r = live.api("GET", f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}/logs")
    return "\n".join(r.json()["lines"]) if r.status_code == 200 else ""


def _at_bottom(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "el => el.scrollHeight - el.scrollTop - el.clientHeight < 24"))


def test_a_running_task_s_log_grows_on_the_page_until_it_is_complete(
    live: Live, browser: Browser, gates: Path, tmp_path: Path
) -> None:
    run_id = _trigger(live, "stepped_log")
    _wait_for(lambda: "early line 80" in _log_text(live, "stepped_log", run_id, "steps"), "the first 80 lines")
    page = login(browser, live, "admin", ADMIN_PASSWORD)
    page.goto(f"{live.url}/dags/stepped_log/runs/{quote(run_id, safe='')}/tasks/steps/log")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    log = page.locator("#log")
    assert "early line 80" in log.inner_text() and "middle line" not in log.inner_text()
    assert page.inner_text("#log-state") == "running" and page.inner_text("#log-source") == "from local"
    assert _at_bottom(page, "#log")  # the newest lines in view

    # Readiness passed: folded away, a click unfolds it.
    assert page.inner_text("#readiness-summary") == "Readiness checks passed"
    assert page.locator("#readiness-failed").is_hidden() and page.locator("#readiness-log").is_hidden()
    page.click("#readiness-summary")
    assert "DAG file" in page.inner_text("#readiness-log") and page.locator("#readiness-log").is_visible()

    (gates / "one").touch()
    expect(page.locator("#log")).to_contain_text("middle line 80", timeout=30_000)
    assert _at_bottom(page, "#log")  # it kept following while the reader was at the bottom
    assert page.inner_text("#log-state") == "running"

    # The reader scrolls up to read: new lines no longer pull the view down.
    page.eval_on_selector("#log", "el => { el.scrollTop = 0; }")
    (gates / "two").touch()
    expect(page.locator("#log-state")).to_have_text("complete", timeout=30_000)
    assert "\nlast line\n" in log.inner_text() and log.inner_text().rstrip().endswith("try 1 ended: success")
    assert page.eval_on_selector("#log", "el => el.scrollTop") == 0
    # The try's state beside its name follows too.
    expect(page.locator("#ti-state")).to_have_text("success", timeout=30_000)
    assert page.evaluate("window.sameDocument") is True  # all of it without a reload
    lines = log.inner_text().splitlines()
    assert len(lines) == len(set(lines)) and "::spinner-" not in page.inner_text("main")  # no repeats, no markers
    assert csp_violations(page) == []  # the follower script ran under the CSP, and the styles applied
    page.screenshot(path=str(tmp_path / "stepped.png"), full_page=True)


def test_failed_readiness_checks_are_open_at_the_top_of_the_log(live: Live, browser: Browser, tmp_path: Path) -> None:
    run_id = _trigger(live, "unready")

    def failed() -> bool:
        tis = live.api("GET", f"/dags/unready/runs/{quote(run_id, safe='')}/tasks").json()["task_instances"]
        return bool(tis) and tis[0]["state"] == "failed"

    _wait_for(failed, "the try to fail its readiness checks")
    page = login(browser, live, "admin", ADMIN_PASSWORD)
    page.goto(f"{live.url}/dags/unready/runs/{quote(run_id, safe='')}/tasks/never_runs/log")
    expect(page.locator("#log-state")).to_have_text("complete", timeout=30_000)
    heading = page.locator("#readiness-failed")
    assert heading.is_visible() and heading.inner_text() == "Readiness checks failed"
    readiness = page.locator("#readiness-log")
    assert readiness.is_visible() and "requirements/missing.txt is not in snapshot" in readiness.inner_text()
    # First: above the task's own log, which never started.
    heading_box, log_box = heading.bounding_box(), page.locator("#log").bounding_box()
    assert heading_box is not None and log_box is not None and heading_box["y"] < log_box["y"]
    assert "this never runs" not in page.inner_text("main") and "::spinner-" not in page.inner_text("main")
    page.screenshot(path=str(tmp_path / "unready.png"), full_page=True)
