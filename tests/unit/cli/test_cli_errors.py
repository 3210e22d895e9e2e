"""The CLI fails with one clear line and a non-zero status, never a traceback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


@pytest.fixture
def not_a_gateway() -> Iterator[str]:
    """A real HTTP server that answers like a web page, not like Spinner: 200 or 502 in HTML."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(502 if "runs" in self.path else 200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dags", "list"], "did not answer like a Spinner gateway"),
        (["runs", "list", "x"], "the gateway answered 502 for GET /dags/x/runs"),
    ],
)
def test_a_server_that_is_not_a_gateway(
    capsys: pytest.CaptureFixture[str], not_a_gateway: str, argv: list[str], message: str
) -> None:
    assert main([*argv, "--server", not_a_gateway]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
