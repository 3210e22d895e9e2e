"""The web pages show what a user looks for: DAGs with partition labels, runs, states, logs."""

from __future__ import annotations

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


async def test_unknown_dag_page_is_a_404_page(site: Site) -> None:
    r = await site.client.get("/dags/nope")
    assert r.status_code == 404 and "DAG &#39;nope&#39; not found" in r.text
