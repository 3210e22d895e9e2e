"""Templates, time zones and params on real processes, SQLite and MariaDB, with the example DAGs of
examples/dags/spinner_tier_2_0/finance: a template file and an included SQL file rendered from the DAG
folder and visible over REST after the run; a Paris DAG described with its zone; a typed trigger form
whose bad conf is refused with 400 and creates no run."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.e2e.harness import Spinner

pytestmark = pytest.mark.e2e

LEDGER = "finance_paris_ledger"
REPORT = "finance_region_report"


def rendered(spinner: Spinner, dag_id: str, run_id: str, task_id: str) -> dict[str, object]:
    path = f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}/rendered"
    return dict(spinner.api(path))


def test_template_files_are_rendered_and_shown_over_rest(spinner: Spinner) -> None:
    result = spinner.run_dag(LEDGER)
    assert result["run"]["state"] == "success", result
    run_id = result["run"]["run_id"]
    close = rendered(spinner, LEDGER, run_id, "close_ledger")
    assert close["try_number"] == 1
    script = str(close["rendered_fields"]["bash_command"])  # type: ignore[index]
    assert "closing ledger eu-main for 20" in script and "{{" not in script.split("\n", 1)[1], script
    assert "closing ledger eu-main for 20" in spinner.task_log(LEDGER, run_id, "close_ledger")
    cli = spinner.cli("tasks", "rendered", LEDGER, run_id, "ledger_totals")
    assert cli.returncode == 0 and "# ----- templates_dict" in cli.stdout and "eu-main" in cli.stdout, cli
    totals = rendered(spinner, LEDGER, run_id, "ledger_totals")
    query = totals["rendered_fields"]["templates_dict"]["query"]  # type: ignore[index]
    assert "WHERE ledger = 'eu-main'" in query and "{{" not in query, query
    page = spinner.get(f"/dags/{LEDGER}/runs/{quote(run_id, safe='')}/tasks/close_ledger/rendered")
    assert page.status_code == 200 and "closing ledger eu-main" in page.text


def test_a_paris_dag_states_its_zone(spinner: Spinner) -> None:
    spinner.wait_for_dag(LEDGER)
    dag = spinner.api(f"/dags/{LEDGER}")
    assert dag["timezone"] == "Europe/Paris" and dag["schedule"] == "0 2 * * *"
    if dag["next_dagrun"]:  # the next run's logical date is 02:00 Paris time, shown in UTC
        assert dag["next_dagrun"].endswith("+00:00") and dag["next_dagrun"][11:16] in ("00:00", "01:00"), dag
    assert 'id="timezone">Europe/Paris' in spinner.get(f"/dags/{LEDGER}").text


def test_params_are_described_validated_and_fill_defaults(spinner: Spinner) -> None:
    spinner.wait_for_dag(REPORT)
    dag = spinner.api(f"/dags/{REPORT}")
    params = {p["name"]: p for p in dag["params"]}
    assert params["days"]["default"] == 7 and params["days"]["schema"]["maximum"] == 90
    assert params["region"]["schema"]["enum"] == ["eu", "us", "apac"]
    assert params["email"]["has_default"] is False
    before = len(spinner.api(f"/dags/{REPORT}/runs")["runs"])
    for conf, words in (
        ({"email": "a@example.com", "days": 400}, ["days", "400 is greater than the maximum of 90"]),
        ({"email": "a@example.com", "region": "mars"}, ["region", "'mars' is not one of"]),
        ({"days": 3}, ["email", "required"]),
    ):
        r = spinner.request("POST", f"/api/v1/dags/{REPORT}/runs", json={"conf": conf})
        assert r.status_code == 400, (conf, r.status_code, r.text)
        assert all(w in r.json()["error"]["message"] for w in words), r.text
    assert len(spinner.api(f"/dags/{REPORT}/runs")["runs"]) == before  # nothing was created
    refused = spinner.api(f"/audit?dag_id={REPORT}&action=trigger&outcome=error")["entries"]
    assert len(refused) == 3 and "400 is greater than the maximum" in str(refused), refused
    result = spinner.run_dag(REPORT, {"email": "cfo@example.com", "region": "apac"})
    assert result["run"]["state"] == "success", result
    kwargs = rendered(spinner, REPORT, result["run"]["run_id"], "report")["rendered_fields"]["op_kwargs"]  # type: ignore[index]
    assert kwargs == {"days": 7, "regions": ["jp", "sg"], "title": "REVENUE REPORT", "send_to": "cfo@example.com"}
    form = spinner.get(f"/dags/{REPORT}").text
    assert 'name="param.j.days"' in form and 'name="param.s.email"' in form


def test_the_dag_page_trigger_form_posts_typed_params(spinner: Spinner) -> None:
    import re

    import httpx

    spinner.wait_for_dag(REPORT)

    def csrf(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found, html[:2000]
        return found.group(1)

    with httpx.Client(base_url=spinner.url, timeout=30) as browser:
        login = browser.get("/login")
        form = {"username": "admin", "password": spinner.admin_password, "csrf_token": csrf(login.text), "next": "/"}
        assert browser.post("/login", data=form).status_code == 303
        page = browser.get(f"/dags/{REPORT}")
        token = csrf(page.text)
        bad = browser.post(f"/dags/{REPORT}/trigger", data={"csrf_token": token, "param.j.days": "0"})
        assert bad.status_code == 400 and "param" in bad.text, bad.text[:2000]
        fields = {"csrf_token": token, "param.j.days": "14", "param.s.region": "us", "param.j.include_refunds": "true",
                  "param.s.email": "ceo@example.com"}  # fmt: skip
        done = browser.post(f"/dags/{REPORT}/trigger", data=fields)
        assert done.status_code == 303, done.text[:2000]
        run_id = re.search(r"run_id=([^&]+)", done.headers["location"]).group(1)  # type: ignore[union-attr]
    from urllib.parse import unquote

    result = spinner.wait_for_run(REPORT, unquote(run_id))
    assert result["run"]["state"] == "success", result
    assert result["run"]["conf"] == {"days": 14, "region": "us", "include_refunds": True, "email": "ceo@example.com"}
