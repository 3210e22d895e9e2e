"""`spinner variables|connections`: bad arguments and files fail with one clear line before any request."""

from __future__ import annotations

from pathlib import Path

import pytest

from spinner.cli.main import main

NOWHERE = ["--server", "http://127.0.0.1:1"]  # unreachable: an error about it would mean a request was sent


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["connections", "set", "c", "--uri", "http://h", "--host", "x"], "either --uri or the fields"),
        (["connections", "set", "c", "--host", "x"], "at least --conn-type"),
        (["connections", "set", "c", "--conn-type", "http", "--extra", "{bad"], "--extra is not valid JSON"),
        (["variables", "import", "/nonexistent/vars.json"], "cannot read /nonexistent/vars.json"),
        (["connections", "import", "/nonexistent/conns.json"], "cannot read /nonexistent/conns.json"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, *NOWHERE]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_import_files_must_hold_a_json_object(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1]")
    assert main(["variables", "import", str(tmp_path / "bad.json"), *NOWHERE]) == 1
    assert "is not valid JSON" in capsys.readouterr().err
    assert main(["connections", "import", str(tmp_path / "list.json"), *NOWHERE]) == 1
    assert "must hold a JSON object" in capsys.readouterr().err


def test_a_request_that_cannot_reach_the_gateway_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["variables", "get", "k", *NOWHERE]) == 1
    assert "cannot reach the gateway" in capsys.readouterr().err
