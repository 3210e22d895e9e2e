"""`spinner standalone` end to end: real processes, the CLI, the web page, with and without MQTT.

This is what a new user does after `make run`: trigger the tutorial, wait for it,
read a task's log, look at the web page. Broken DAG files sit beside the good ones.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Spinner:
    url: str
    home: Path
    proc: subprocess.Popen[str]
    output: Path

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """The CLI as a user runs it: its token is the one standalone saved in SPINNER_HOME."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
        return subprocess.run(
            [sys.executable, "-m", "spinner.cli.main", *args, "--server", self.url],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**env, "SPINNER_HOME": str(self.home)},
        )

    @property
    def token(self) -> str:
        from spinner import credentials

        token = credentials.token_for(self.url, self.home)
        assert token, "standalone saved no CLI token"
        return token

    @property
    def admin_password(self) -> str:
        line = next(line for line in self.output.read_text().splitlines() if "Log in as admin with password" in line)
        return line.split("password ", 1)[1].split()[0]

    def get(self, path: str) -> httpx.Response:
        try:
            return httpx.get(self.url + path, headers={"authorization": f"Bearer {self.token}"})
        except httpx.TransportError as e:  # the gateway is gone: what standalone printed says why
            state = "running" if self.proc.poll() is None else f"exited ({self.proc.returncode})"
            raise AssertionError(
                f"GET {path}: {e!r}; standalone {state}; its output:\n{self.output.read_text()}"
            ) from e


def _start(tmp_path: Path, mqtt_url: str) -> Iterator[Spinner]:
    dags = tmp_path / "dags"
    shutil.copytree(ROOT / "examples" / "dags", dags)
    broken = dags / "spinner_tier_2_0" / "broken"
    broken.mkdir()
    (broken / "syntax_error.py").write_text("from spinner import DAG\n\ndef oops(:\n")
    (broken / "cycle.py").write_text(
        "from spinner import DAG, BashOperator, Tier\n"
        "with DAG(dag_id='has_cycle', tier=Tier.TIER2) as dag:\n"
        "    a = BashOperator(task_id='a', bash_command='true')\n"
        "    b = BashOperator(task_id='b', bash_command='true')\n"
        "    a >> b >> a\n"
    )
    port = free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPINNER_")}
    cmd = [sys.executable, "-m", "spinner.cli.main", "standalone", "--port", str(port), "--dags", str(dags),
           "--home", str(home)]  # fmt: skip
    if mqtt_url:
        cmd += ["--mqtt-url", mqtt_url]
    # Output goes to a file, not a pipe: nobody reads a pipe once started, and a full one blocks.
    out_path = tmp_path / "standalone.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while "Spinner is running" not in out_path.read_text():
            if proc.poll() is not None:
                raise AssertionError("standalone exited early:\n" + out_path.read_text())
            if time.monotonic() > deadline:
                raise AssertionError("standalone did not start:\n" + out_path.read_text())
            time.sleep(0.2)
        assert url in out_path.read_text()
        yield Spinner(url=url, home=home, proc=proc, output=out_path)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["polling", "mqtt"])
def spinner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spinner]:
    mqtt_url = request.getfixturevalue("mqtt_url") if request.param == "mqtt" else ""
    yield from _start(tmp_path, mqtt_url)


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
