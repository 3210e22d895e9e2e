"""A run made by a task's TriggerDagRunOperator links to that task, and the task's page links the run;
a viewer who may not read the triggering DAG sees neither its name nor a link (on SQLite and MariaDB)."""

from __future__ import annotations

from spinner.db.models import DagRun, SerializedDagModel

from .conftest import NOW, Site


async def _seed_triggered_run(site: Site) -> None:
    async with site.sessions() as s, s.begin():
        s.add(
            DagRun(
                dag_id="dag_1", run_id="triggered_1", run_type="manual", state="success", logical_date=NOW,
                conf={"day": "2026-06-01"}, partition="spinner_tier_1_0", created_at=NOW, triggered_by="task dag_0.extract",
                triggering_dag_id="dag_0", triggering_run_id="manual__1", triggering_task_id="extract",
            )
        )  # fmt: skip


async def test_pages_and_api_link_a_triggered_run_and_its_task(site: Site) -> None:
    await _seed_triggered_run(site)
    run = (await site.client.get("/api/v1/dags/dag_1/runs/triggered_1")).json()
    assert run["triggering"] == {"dag_id": "dag_0", "run_id": "manual__1", "task_id": "extract"}, run
    page = (await site.client.get("/dags/dag_1?run_id=triggered_1")).text
    assert 'id="triggered-by"' in page and 'href="/dags/dag_0/runs/manual__1/tasks/extract/log"' in page
    task_page = (await site.client.get("/dags/dag_0/runs/manual__1/tasks/extract/log")).text
    assert 'id="triggered-runs"' in task_page and 'href="/dags/dag_1?run_id=triggered_1"' in task_page
    other_task = (await site.client.get("/dags/dag_0/runs/manual__1/tasks/load/log")).text
    assert 'id="triggered-runs"' not in other_task


async def test_a_viewer_who_may_not_read_the_triggering_dag_sees_no_link(site: Site) -> None:
    await _seed_triggered_run(site)
    async with site.sessions() as s, s.begin():
        for dag_id, acl in (("dag_0", {"team-b": ["can_dag_read"]}), ("dag_1", {"team-a": ["can_dag_read"]})):
            s.add(SerializedDagModel(dag_id=dag_id, partition="spinner_tier_1_0", fileloc="f.py",
                                     data={"dag_id": dag_id, "tasks": [], "access_control": acl}, dag_hash="h",
                                     updated_at=NOW))  # fmt: skip
    await site.gateway.start()  # syncs the access_control above
    alice = await site.user("alice", ["team-a"])
    run = (await alice.get("/api/v1/dags/dag_1/runs/triggered_1")).json()
    assert run["triggering"] is None and "dag_0" not in run["triggered_by"], run
    page = await alice.get("/dags/dag_1?run_id=triggered_1")
    assert page.status_code == 200 and 'id="triggered-by"' not in page.text
    assert "dag_0.extract" not in page.text and "dag_0/runs" not in page.text
    bob = await site.user("bob", ["team-b"])
    task_page = (await bob.get("/dags/dag_0/runs/manual__1/tasks/extract/log")).text
    assert 'id="triggered-runs"' not in task_page and "dag_1?run_id" not in task_page
