"""The CLI fails with one clear line and a non-zero status, never a traceback."""

from __future__ import annotations

import pytest

from spinner.cli.main import main


def test_unreachable_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dags", "list", "--server", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot reach the gateway at http://127.0.0.1:1")


@pytest.mark.parametrize(("conf", "message"), [("{oops", "--conf is not valid JSON"), ("[1]", "must be a JSON object")])
def test_bad_conf_is_refused_before_any_request(capsys: pytest.CaptureFixture[str], conf: str, message: str) -> None:
    # The server is unreachable: the error proves nothing was sent.
    assert main(["dags", "trigger", "x", "--conf", conf, "--server", "http://127.0.0.1:1"]) == 1
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["dags", "trigger"])
    assert e.value.code == 2
    assert "dag_id" in capsys.readouterr().err
