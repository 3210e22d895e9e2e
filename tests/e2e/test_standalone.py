"""`spinner standalone` end to end: real processes, the CLI, the web page, with and without MQTT.

This is what a new user does after `make run`: trigger the tutorial, wait for it,
read a task's log, look at the web page. Broken DAG files sit beside the good ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Spinner, start_standalone

pytestmark = pytest.mark.e2e

# Broken DAG files beside the good ones: import errors, while every other DAG runs.
BROKEN = {
    "spinner_tier_2_0/broken/syntax_error.py": "from spinner import DAG\n\ndef oops(:\n",
    "spinner_tier_2_0/broken/cycle.py": (
        "from spinner import DAG, BashOperator, Tier\n"
        "with DAG(dag_id='has_cycle', tier=Tier.TIER2) as dag:\n"
        "    a = BashOperator(task_id='a', bash_command='true')\n"
        "    b = BashOperator(task_id='b', bash_command='true')\n"
        "    a >> b >> a\n"
    ),
}


@pytest.fixture(params=["polling", "mqtt"])
def spinner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spinner]:
    mqtt_url = request.getfixturevalue("mqtt_url") if request.param == "mqtt" else ""
    yield from start_standalone(tmp_path, mqtt_url=mqtt_url, extra_files=BROKEN)


def _wait_for_dag(spinner: Spinner, dag_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = spinner.get(f"/api/v1/dags/{dag_id}")
        if r.status_code == 200:
            return
        time.sleep(0.3)
    raise AssertionError(f"DAG {dag_id} never appeared")


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _check_ui(spinner: Spinner, run_id: str, label: str) -> None:
    """What a person sees in a real browser: the DAG listed, the run green in the grid, the log."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(spinner.url + "/")
            page.wait_for_url("**/login**")
            page.fill("#username", "admin")
            page.fill("#password", spinner.admin_password)
            page.click("#login")
            page.wait_for_selector("#dags")
            page.click('#dags a:text-is("tutorial")')
            page.wait_for_url("**/dags/tutorial")
            assert page.locator(f'th.run[title="{run_id}"]').count() == 1
            cells = page.locator('#grid a[title*="' + run_id + '"]')
            assert cells.count() == 5
            assert {cells.nth(i).get_attribute("data-state") for i in range(5)} == {"success"}
            page.screenshot(path=str(spinner.home / f"dag-page-{label}.png"), full_page=True)
            page.locator('#grid a[title^="templated · ' + run_id + '"]').click()
            assert "hello from tutorial" in page.inner_text("#log")
        finally:
            browser.close()


def test_tutorial_runs_end_to_end(spinner: Spinner) -> None:
    _wait_for_dag(spinner, "tutorial")

    listed = spinner.cli("dags", "list")
    assert listed.returncode == 0, listed.stderr
    assert "tutorial" in listed.stdout and "spinner_tier_1_0" in listed.stdout

    started = time.monotonic()
    triggered = spinner.cli("dags", "trigger", "tutorial", "--conf", '{"source": "e2e"}', "--wait")
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    assert time.monotonic() - started < 60
    run_id = next(line.split()[-1] for line in triggered.stdout.splitlines() if "manual__" in line)
    run_id = run_id.strip("'\".,")

    logs = spinner.cli("tasks", "logs", "tutorial", run_id, "templated")
    assert logs.returncode == 0, logs.stderr
    assert "hello from tutorial" in logs.stdout
    assert "run_id=" + run_id in logs.stdout
    py_logs = spinner.cli("tasks", "logs", "tutorial", run_id, "report")
    assert "report for" in py_logs.stdout and "'total': 31" in py_logs.stdout

    _check_ui(spinner, run_id, "mqtt" if "--mqtt-url" in " ".join(map(str, spinner.proc.args)) else "polling")

    # Bad input: clear messages, nothing stops.
    unknown = spinner.cli("dags", "trigger", "no_such_dag")
    assert unknown.returncode != 0
    assert "no_such_dag" in unknown.stderr and "not found" in unknown.stderr.lower()
    assert "Traceback" not in unknown.stderr
    deadline = time.monotonic() + 30
    while True:  # files are reported as each is parsed
        text = str(spinner.get("/api/v1/import-errors").json())
        if ("syntax_error.py" in text and "cycle.py" in text) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "syntax_error.py" in text and "SyntaxError" in text
    assert "cycle.py" in text and "has_cycle" in text
    assert spinner.proc.poll() is None, "standalone must keep running"
    assert "Traceback" not in spinner.output.read_text()
