"""The web pages show what a user looks for: DAGs with partition labels, runs, states, logs."""

from __future__ import annotations

import re

import httpx
from starlette.requests import Request
from starlette.responses import Response

from .conftest import Site


async def test_home_lists_dags_with_partition_and_recent_runs(site: Site) -> None:
    r = await site.client.get("/")
    assert r.status_code == 200
    assert "dag_0" in r.text and "dag_2" in r.text and "gone" not in r.text
    assert "spinner_tier_1_0" in r.text
    assert 'title="manual__1: success"' in r.text


async def test_dag_page_shows_the_grid_of_runs_by_task(site: Site) -> None:
    r = await site.client.get("/dags/dag_0")
    assert r.status_code == 200
    assert "manual__1" in r.text
    assert 'data-state="success"' in r.text and 'data-state="failed"' in r.text


async def test_log_page_shows_the_log(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "hello from the task\n", done=True)
    r = await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/log")
    assert r.status_code == 200 and "hello from the task" in r.text


async def test_log_page_without_javascript_folds_passed_readiness_and_opens_failed_readiness_first(
    site: Site,
) -> None:
    passed = (
        "::spinner-section::readiness\nDAG file present\n::spinner-readiness::passed\n::spinner-section::task\nhi\n"
    )
    site.write_log("dag_0", "manual__1", "extract", 1, passed, done=True)
    page = (await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/log")).text
    assert '<details id="readiness" class="readiness passed">' in page  # folded: no `open`
    assert '<h2 id="readiness-failed" hidden>' in page
    shown = "".join(re.findall(r"<pre[^>]*>(.*?)</pre>", page, re.S))
    assert shown == "DAG file present\nhi\n"  # the runner's marker lines are not shown

    failed = "::spinner-section::readiness\nDAG file t/d0.py is not in snapshot v1\n::spinner-readiness::failed\n"
    site.write_log("dag_0", "manual__1", "load", 1, failed, done=False)
    page = (await site.client.get("/dags/dag_0/runs/manual__1/tasks/load/log")).text
    assert '<h2 id="readiness-failed">Readiness checks failed</h2>' in page
    assert '<details id="readiness" class="readiness failed" open>' in page
    assert page.index("readiness-failed") < page.index("is not in snapshot v1") < page.index('id="log"')
    # Still being written: a browser without JavaScript reloads the page to see more.
    assert '<noscript><meta http-equiv="refresh"' in page


async def test_log_page_of_a_try_that_wrote_nothing_yet_waits_for_it(site: Site) -> None:
    r = await site.client.get("/dags/dag_0/runs/manual__1/tasks/load/log")
    assert r.status_code == 200 and "waiting for the try's first line" in r.text
    assert 'data-stream="/api/v1/dags/dag_0/runs/manual__1/tasks/load/logs/stream?try_number=1&amp;"' in r.text


async def test_unknown_dag_page_is_a_404_page(site: Site) -> None:
    r = await site.client.get("/dags/nope")
    assert r.status_code == 404 and "DAG &#39;nope&#39; not found" in r.text


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


async def test_every_page_and_api_answer_carries_the_security_headers(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "hello\n", done=True)
    anonymous = site.client_for(None)
    answers = [
        await site.client.get("/"),
        await site.client.get("/dags/dag_0"),
        await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/log"),
        await site.client.get("/no-such-page"),
        await site.client.get("/api/v1/dags"),
        await site.client.get("/api/v1/dags/nope"),
        await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/extract/logs/stream"),
        await anonymous.get("/login"),
        await anonymous.get("/"),  # the redirect to the login page
        await anonymous.get("/api/v1/dags"),  # 401
        await anonymous.post("/api/v1/auth/token", content=b"{not json"),  # 400
    ]
    for r in answers:
        where = f"{r.request.method} {r.request.url.path} ({r.status_code})"
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, f"{where}: {name} is {r.headers.get(name)!r}"
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, f"{where}: CSP {csp!r}"
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0], f"{where}: inline scripts allowed"


async def test_the_log_pages_script_carries_the_nonce_its_csp_allows(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "still going\n", done=False)
    nonces = []
    for _ in range(2):
        r = await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/log")
        nonce = re.search(r"script-src 'nonce-([^']+)'", r.headers["content-security-policy"])
        assert nonce, r.headers["content-security-policy"]
        scripts = re.findall(r"<script([^>]*)>", r.text)
        assert scripts and all(f'nonce="{nonce.group(1)}"' in attrs for attrs in scripts)
        nonces.append(nonce.group(1))
    assert nonces[0] != nonces[1]  # a fresh nonce for every response


async def test_error_pages_carry_the_security_headers_and_a_crash_shows_no_traceback(site: Site) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("secret detail: /srv/spinner/db.py line 12")

    site.app.add_route("/boom", boom)
    site.app.add_route("/api/v1/boom", boom)
    transport = httpx.ASGITransport(app=site.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        answers = [
            await client.get("/boom"),
            await client.get("/api/v1/boom"),
            await client.get("/no-such-page"),
            await client.post("/api/v1/health"),  # 405
            await client.delete("/login"),  # 405 of a page
        ]
    assert [r.status_code for r in answers] == [500, 500, 404, 405, 405]
    for r in answers:
        where = f"{r.request.method} {r.request.url.path} ({r.status_code})"
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, f"{where}: {name} is {r.headers.get(name)!r}"
        assert "default-src 'none'" in r.headers.get("content-security-policy", ""), where
    page, api = answers[0], answers[1]
    assert page.headers["content-type"].startswith("text/html") and "internal error" in page.text
    assert api.json() == {"error": {"code": "internal", "message": "internal error"}}
    for r in (page, api):
        assert "secret detail" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
