"""The REST API: listings, clear 4xx answers for bad requests, logs through the logs service."""

from __future__ import annotations

import datetime as dt

import pytest

from .conftest import NOW, Site, add_lease


async def test_lists_active_dags_with_pagination(site: Site) -> None:
    r = await site.client.get("/api/v1/dags", params={"limit": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 3
    assert [d["dag_id"] for d in body["dags"]] == ["dag_0", "dag_1"]
    r = await site.client.get("/api/v1/dags", params={"limit": 2, "offset": 2})
    assert [d["dag_id"] for d in r.json()["dags"]] == ["dag_2"]
    assert r.json()["dags"][0]["partition"] == "spinner_tier_1_0"


async def test_runs_and_task_instances(site: Site) -> None:
    runs = (await site.client.get("/api/v1/dags/dag_0/runs")).json()["runs"]
    assert [(r["run_id"], r["state"], r["conf"]) for r in runs] == [("manual__1", "success", {"k": 1})]
    tis = (await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks")).json()["task_instances"]
    assert {t["task_id"]: t["state"] for t in tis} == {"extract": "success", "load": "failed"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/v1/dags/nope", "DAG 'nope' not found"),
        ("/api/v1/dags/gone", "DAG 'gone' not found"),
        ("/api/v1/dags/nope/runs", "DAG 'nope' not found"),
        ("/api/v1/dags/dag_0/runs/missing", "run 'missing' of DAG 'dag_0' not found"),
        ("/api/v1/dags/dag_0/runs/manual__1/tasks/nope/logs", "task 'nope' of run 'manual__1'"),
        ("/api/v1/nothing-here", "no such page or endpoint"),
    ],
)
async def test_unknown_things_are_404_with_a_message(site: Site, path: str, message: str) -> None:
    r = await site.client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert message in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"conf": [1]}', "conf must be a JSON object"),
        (b'{"conf": {}, "extra": 1}', "unknown field"),
        (b'{"run_id": ""}', "run_id must be a non-empty string"),
    ],
)
async def test_malformed_trigger_is_400(site: Site, body: bytes, message: str) -> None:
    r = await site.client.post("/api/v1/dags/dag_0/runs", content=body)
    assert r.status_code == 400
    assert message in r.json()["error"]["message"]


@pytest.mark.parametrize("query", ["limit=0", "limit=-5", "limit=abc", "offset=-1", "limit=100000"])
async def test_bad_paging_is_400(site: Site, query: str) -> None:
    r = await site.client.get(f"/api/v1/dags?{query}")
    assert r.status_code == 400


async def test_trigger_unknown_dag_is_404(site: Site) -> None:
    r = await site.client.post("/api/v1/dags/nope/runs", json={})
    assert r.status_code == 404 and "DAG 'nope' not found" in r.json()["error"]["message"]


async def test_trigger_without_a_scheduler_is_503(site: Site) -> None:
    r = await site.client.post("/api/v1/dags/dag_0/runs", json={})
    assert r.status_code == 503
    assert "no scheduler holds partition spinner_tier_1_0" in r.json()["error"]["message"]


async def test_expired_lease_counts_as_no_scheduler(site: Site) -> None:
    await add_lease(site.sessions, NOW - dt.timedelta(seconds=1), "127.0.0.1:1")
    r = await site.client.post("/api/v1/dags/dag_0/runs", json={})
    assert r.status_code == 503 and "no scheduler" in r.json()["error"]["message"]


async def test_unreachable_scheduler_is_503(site: Site) -> None:
    await add_lease(site.sessions, NOW + dt.timedelta(minutes=1), "127.0.0.1:1")
    r = await site.client.post("/api/v1/dags/dag_0/runs", json={"conf": {"a": 1}})
    assert r.status_code == 503
    assert "scheduler of spinner_tier_1_0 is not reachable" in r.json()["error"]["message"]


async def test_task_log_from_the_logs_service(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "extract", 1, "line one\nline two\nline three\n", done=True)
    r = await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/extract/logs")
    assert r.status_code == 200
    assert r.json() == {
        "lines": ["line one", "line two", "line three"], "sections": ["", "", ""], "next_offset": 3,
        "source": "local", "complete": True, "try_number": 1, "readiness": "", "fallback_reason": "",
    }  # fmt: skip
    r = await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/extract/logs", params={"offset": 2})
    assert r.json()["lines"] == ["line three"]


async def test_task_log_says_each_line_s_section_and_how_readiness_went(site: Site) -> None:
    text = "::spinner-section::readiness\nchecks ok\n::spinner-readiness::passed\n::spinner-section::task\nhello\n"
    site.write_log("dag_0", "manual__1", "extract", 1, text, done=True)
    body = (await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/extract/logs")).json()
    assert body["readiness"] == "passed"
    assert list(zip(body["lines"], body["sections"], strict=True))[1:] == [
        ("checks ok", "readiness"), ("::spinner-readiness::passed", "readiness"),
        ("::spinner-section::task", "task"), ("hello", "task"),
    ]  # fmt: skip


async def test_running_log_is_not_complete_and_a_half_line_waits(site: Site) -> None:
    site.write_log("dag_0", "manual__1", "load", 1, "first\nhalf a li", done=False)
    r = await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/load/logs")
    assert r.json()["lines"] == ["first"] and r.json()["complete"] is False


async def test_missing_log_and_bad_try_are_404(site: Site) -> None:
    r = await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/load/logs")
    assert r.status_code == 404 and "no log for dag_0.load" in r.json()["error"]["message"]
    r = await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/load/logs", params={"try_number": 5})
    assert r.status_code == 404 and "has no try 5" in r.json()["error"]["message"]


async def test_import_errors_listing(site: Site) -> None:
    from spinner.db.models import ImportError_

    async with site.sessions() as s, s.begin():
        s.add(ImportError_(partition="spinner_tier_1_0", filename="a/b.py", stacktrace="SyntaxError: x", timestamp=NOW))
    body = (await site.client.get("/api/v1/import-errors")).json()
    assert body["import_errors"][0]["filename"] == "a/b.py"
    assert "SyntaxError" in body["import_errors"][0]["stacktrace"]


async def test_pools_can_be_listed_and_set(site: Site) -> None:
    pools = (await site.client.get("/api/v1/pools")).json()["pools"]
    assert pools == [{"name": "default_pool", "slots": 128, "used": 0, "description": "Default pool"}]
    r = await site.client.put("/api/v1/pools/gpu", json={"slots": 2, "description": "two GPUs"})
    assert r.status_code == 200 and r.json() == {"name": "gpu", "slots": 2, "used": 0, "description": "two GPUs"}
    for bad in ({"slots": -1}, {"slots": "many"}, {"slots": True}, {"slots": 1, "colour": "red"}):
        r = await site.client.put("/api/v1/pools/gpu", json=bad)
        assert r.status_code == 400, bad
    r = await site.client.put("/api/v1/pools/bad%20name", json={"slots": 1})
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "/api/v1/dags/dag_0/runs/manual__1/clear", {"task_ids": "extract"}, "task_ids must be a list"),
        ("POST", "/api/v1/dags/dag_0/runs/manual__1/clear", {"only_failed": "yes"}, "only_failed must be"),
        ("POST", "/api/v1/dags/dag_0/runs/manual__1/mark", {"state": "maybe"}, "state must be"),
        ("PATCH", "/api/v1/dags/dag_0", {"is_paused": "no"}, "is_paused must be true or false"),
        ("PATCH", "/api/v1/dags/dag_0", {}, "nothing to change"),
        ("POST", "/api/v1/dags/dag_0/backfill", {"start": "2026-01-01"}, "start and end are required"),
    ],
)
async def test_malformed_actions_are_400(
    site: Site, method: str, path: str, body: dict[str, object], message: str
) -> None:
    r = await site.client.request(method, path, json=body)
    assert r.status_code == 400 and message in r.json()["error"]["message"]


async def test_actions_on_unknown_things_are_404_and_without_scheduler_503(site: Site) -> None:
    r = await site.client.post("/api/v1/dags/dag_0/runs/nope/clear", json={})
    assert r.status_code == 404
    r = await site.client.patch("/api/v1/dags/nope", json={"is_paused": True})
    assert r.status_code == 404
    r = await site.client.patch("/api/v1/dags/dag_0", json={"is_paused": True})
    assert r.status_code == 503 and "no scheduler" in r.json()["error"]["message"]


async def test_log_of_a_task_that_has_not_started_says_so(site: Site) -> None:
    from spinner.db.models import TaskInstance

    async with site.sessions() as s, s.begin():
        s.add(TaskInstance(dag_id="dag_0", run_id="manual__1", task_id="later", partition="spinner_tier_1_0"))
    r = await site.client.get("/api/v1/dags/dag_0/runs/manual__1/tasks/later/logs")
    assert r.status_code == 404 and "has not started yet" in r.json()["error"]["message"]
    page = await site.client.get("/dags/dag_0/runs/manual__1/tasks/later/log")
    assert page.status_code == 200 and "has not started yet" in page.text
