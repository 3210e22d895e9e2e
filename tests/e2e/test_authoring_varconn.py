"""Variables and connections on real processes, SQLite and MariaDB: an admin sets them with the CLI, a task in
its own process reads them (Python and templates) through the executor, the secrets are *** in its log, the audit
log shows the changes, a non-admin is refused, and reading a connection at parse time is an import error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.harness import Spinner

pytestmark = pytest.mark.e2e

DAG_ID = "partners_daily_export"  # examples/dags/spinner_tier_2_0/partners/daily_export.py
PASSWORD = "S3cret-Pa55/word"
TOKEN = "tok-e2e-0123456789"

PARSE_TIME_DAG = """
from spinner import DAG, BaseHook, BashOperator, Tier

target = BaseHook.get_connection("partner_sftp").host
with DAG("reads_connection_at_parse_time", tier=Tier.TIER2) as dag:
    BashOperator(task_id="t", bash_command="echo " + target)
"""

MISSING_DAG = """
from spinner import DAG, BashOperator, Tier

with DAG("needs_a_missing_variable", tier=Tier.TIER2) as dag:
    BashOperator(task_id="t", bash_command="echo {{ var.value.not_set_anywhere }}")
"""


E2E_FILES = {
    "spinner_tier_2_0/varconn/parse_time.py": PARSE_TIME_DAG,
    "spinner_tier_2_0/varconn/missing.py": MISSING_DAG,
}


def _ok(spinner: Spinner, *args: str) -> str:
    done = spinner.cli(*args)
    assert done.returncode == 0, f"spinner {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def test_the_example_runs_with_its_defaults_before_anything_is_set(spinner: Spinner) -> None:
    """As on `make run`: nothing set, so defaults and a dry run (this module's first test)."""
    result = spinner.run_dag(DAG_ID)
    assert result["run"]["state"] == "success", result
    run_id = result["run"]["run_id"]
    assert "building the eu export" in spinner.task_log(DAG_ID, run_id, "build_export")
    assert "export for acme, eu region" in spinner.task_log(DAG_ID, run_id, "announce")
    assert "no partner_sftp connection: dry run" in spinner.task_log(DAG_ID, run_id, "upload")


def test_a_task_reads_what_the_cli_set_and_the_secrets_are_masked_in_its_log(spinner: Spinner) -> None:
    _ok(spinner, "variables", "set", "partner_export_config", '{"region": "us", "max_rows": 5}')
    _ok(spinner, "variables", "set", "partner_name", "globex")
    _ok(spinner, "variables", "set", "partner_api_token", TOKEN, "--description", "partner API")
    uri = f"sftp://exporter:{PASSWORD.replace('/', '%2F')}@sftp.partner.example:2222/outbox"
    _ok(spinner, "connections", "set", "partner_sftp", "--uri", uri)
    assert "partner_sftp" in _ok(spinner, "connections", "list")
    assert PASSWORD not in _ok(spinner, "connections", "list")

    result = spinner.run_dag(DAG_ID)
    assert result["run"]["state"] == "success", result
    run_id = result["run"]["run_id"]
    logs = {t: spinner.task_log(DAG_ID, run_id, t) for t in ("build_export", "announce", "upload")}
    assert "building the us export" in logs["build_export"] and "at most 5 rows" in logs["build_export"]
    assert "authenticating to the partner API with token ***" in logs["build_export"]
    assert "export for globex, us region" in logs["announce"]
    assert "target sftp.partner.example as exporter, password ***" in logs["announce"]  # BashOperator output
    assert "to sftp.partner.example:2222 as exporter into /outbox" in logs["upload"]
    assert "connection URI: ***" in logs["upload"]
    everything = "\n".join(logs.values())
    assert PASSWORD not in everything and TOKEN not in everything and "S3cret" not in everything, everything

    audit = spinner.api("/audit?action=variable.set&limit=10")["entries"]
    assert {(e["username"], e["outcome"], e["details"]["key"]) for e in audit} >= {
        ("admin", "ok", "partner_api_token"), ("admin", "ok", "partner_export_config"),
    }  # fmt: skip
    assert TOKEN not in json.dumps(spinner.api("/audit?limit=200"))
    assert "connection.set" in _ok(spinner, "audit", "--action", "connection.set")


def test_a_non_admin_is_refused_and_the_refusal_is_audited(spinner: Spinner) -> None:
    _ok(spinner, "users", "create", "viewer_vc")
    token = _ok(spinner, "users", "token", "viewer_vc").strip()
    for args in (("variables", "list"), ("variables", "get", "partner_api_token"), ("connections", "get", "x"),
                 ("variables", "set", "partner_api_token", "mine")):  # fmt: skip
        done = spinner.cli(*args, "--token", token)
        assert done.returncode == 1 and "only an Admin" in done.stderr, done.stdout + done.stderr
        assert TOKEN not in done.stdout + done.stderr
    denied = spinner.api("/audit?username=viewer_vc&outcome=denied&limit=50")["entries"]
    assert {e["action"] for e in denied} >= {"variable.list", "variable.get", "connection.get", "variable.set"}


def test_export_and_import_round_trip_through_files(spinner: Spinner, tmp_path: Path) -> None:
    _ok(spinner, "variables", "set", "roundtrip_region", "eu-north-1")
    _ok(spinner, "connections", "set", "roundtrip_db", "--conn-type", "postgres", "--host", "db.internal",
        "--port", "5432", "--login", "app", "--password", "pw-roundtrip-1", "--extra", '{"sslmode": "require"}')  # fmt: skip
    variables, connections = tmp_path / "variables.json", tmp_path / "connections.json"
    _ok(spinner, "variables", "export", str(variables))
    _ok(spinner, "connections", "export", str(connections))
    assert oct(variables.stat().st_mode & 0o777) == "0o600"
    exported = json.loads(connections.read_text())["roundtrip_db"]
    assert (exported["host"], exported["port"], exported["password"]) == ("db.internal", 5432, "pw-roundtrip-1")
    _ok(spinner, "variables", "delete", "roundtrip_region")
    _ok(spinner, "connections", "delete", "roundtrip_db")
    assert "imported" in _ok(spinner, "variables", "import", str(variables), "--on-existing", "skip")
    _ok(spinner, "connections", "import", str(connections))
    assert _ok(spinner, "variables", "get", "roundtrip_region").strip() == "eu-north-1"
    uri = _ok(spinner, "connections", "get", "roundtrip_db", "--uri").strip()
    assert uri == "postgres://app:pw-roundtrip-1@db.internal:5432/?sslmode=require"
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    done = spinner.cli("variables", "import", str(bad))
    assert done.returncode == 1 and "must hold a JSON object" in done.stderr


def test_a_connection_at_parse_time_is_an_import_error_and_a_missing_variable_fails_the_task(spinner: Spinner) -> None:
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline and "parse_time.py" not in text:
        text = str(spinner.api("/import-errors"))
        time.sleep(0.3)
    assert "parse_time.py" in text and "connections are only available while a task runs" in text, text
    result = spinner.run_dag("needs_a_missing_variable")
    assert result["tasks"]["t"]["state"] == "failed", result
    log = spinner.task_log("needs_a_missing_variable", result["run"]["run_id"], "t")
    assert "Variable not_set_anywhere does not exist" in log, log
