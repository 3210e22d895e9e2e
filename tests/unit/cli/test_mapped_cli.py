"""The CLI and mapped tasks: `--map-index N` names one instance (logs, xcom, rendered, clear, mark), and
listings show a mapped task's instances with their map_index. Against a real HTTP server that answers
like the gateway and records what it was asked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from spinner.cli.main import main

RUN = "/api/v1/dags/d/runs/r"
INSTANCES = [
    {"task_id": "extract", "map_index": -1, "state": "success", "try_number": 1},
    {"task_id": "files", "map_index": 0, "state": "success", "try_number": 1},
    {"task_id": "files", "map_index": 1, "state": "running", "try_number": 2},
    {"task_id": "files", "map_index": 2, "state": "success", "try_number": 1},
]
XCOMS = [
    {"key": "return_value", "value": "a.csv", "map_index": 0, "size": 7, "timestamp": None},
    {"key": "return_value", "value": "c.csv", "map_index": 2, "size": 7, "timestamp": None},
]


@dataclass
class Gateway:
    url: str
    asked: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)  # method, path, query, body


def _answer(method: str, path: str, query: dict[str, list[str]]) -> Any:
    if path == f"{RUN}/tasks":
        return {"task_instances": [{"start_date": None, "end_date": None, **t} for t in INSTANCES]}
    if path == RUN:
        return {"run_id": "r", "state": "success"}
    if path == "/api/v1/dags/d/runs":
        return {"run_id": "r"}
    if path.endswith("/logs"):
        return {"lines": [f"log of {query.get('map_index', ['-1'])[0]}"], "next_offset": 1, "complete": True,
                "try_number": 2}  # fmt: skip
    if path.endswith("/rendered"):
        index = int(query.get("map_index", ["-1"])[0])
        return {"map_index": index, "try_number": 2, "rendered_at": "2026-06-01T12:00:00+00:00",
                "rendered_fields": {"bash_command": f"echo {index}"}}  # fmt: skip
    if path.endswith("/xcom"):
        wanted = query.get("map_index")
        return {"xcoms": [x for x in XCOMS if not wanted or x["map_index"] == int(wanted[0])]}
    if path.endswith(("/clear", "/mark")):
        return {"task_ids": ["files"]}
    return None


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    got = Gateway("")

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            query = parse_qs(url.query)
            got.asked.append((self.command, url.path, query, body))
            answer = _answer(self.command, url.path, query)
            self.send_response(200 if answer is not None else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            payload = answer if answer is not None else {"error": {"code": "not_found", "message": "no such thing"}}
            self.wfile.write(json.dumps(payload).encode())

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _run(gateway: Gateway, *argv: str) -> int:
    return main([*argv, "--server", gateway.url, "--token", "t"])


@pytest.mark.parametrize("command", ["logs", "xcom", "rendered"])
def test_map_index_names_one_instance(gateway: Gateway, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(gateway, "tasks", command, "d", "r", "files", "--map-index", "2") == 0
    ((method, path, query, _),) = gateway.asked
    assert (method, path.rsplit("/", 1)[-1], query["map_index"]) == ("GET", command, ["2"])
    out = capsys.readouterr().out
    assert {"logs": "log of 2\n", "xcom": "c.csv", "rendered": "# instance 2, try 2"}[command] in out


def test_without_map_index_no_instance_is_named(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(gateway, "tasks", "logs", "d", "r", "extract") == 0
    assert "map_index" not in gateway.asked[0][2]
    assert _run(gateway, "tasks", "rendered", "d", "r", "extract") == 0
    assert capsys.readouterr().out.splitlines()[1] == "# try 2, rendered at 2026-06-01T12:00:00+00:00"


@pytest.mark.parametrize("value", ["x", "-1", "1.5"])
def test_a_map_index_that_is_not_an_instance_s_index_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["tasks", "logs", "d", "r", "files", "--map-index", value, "--server", "http://127.0.0.1:1"])
    assert e.value.code == 2
    assert "--map-index: must be an instance's index (0, 1, ...)" in capsys.readouterr().err


def test_the_xcoms_of_every_instance_say_their_map_index(gateway: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(gateway, "tasks", "xcom", "d", "r", "files") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["MAP_INDEX", "KEY", "VALUE", "BYTES"], ["0", "return_value", '"a.csv"', "7"], ["2", "return_value", '"c.csv"', "7"],
    ]  # fmt: skip
    assert _run(gateway, "tasks", "xcom", "d", "r", "files", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"return_value": {"0": "a.csv", "2": "c.csv"}}
    assert _run(gateway, "tasks", "xcom", "d", "r", "files", "--json", "--map-index", "0") == 0
    assert json.loads(capsys.readouterr().out) == {"return_value": "a.csv"}


def test_tasks_list_shows_the_map_index_of_mapped_instances(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(gateway, "tasks", "list", "d", "r") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TASK_ID", "MAP_INDEX", "STATE", "TRY", "STARTED", "ENDED"]
    assert [line.split() for line in lines[1:]] == [
        ["extract", "success", "1"], ["files", "0", "success", "1"], ["files", "1", "running", "2"],
        ["files", "2", "success", "1"],
    ]  # fmt: skip
    column = lines[0].index("MAP_INDEX")
    assert lines[2][column] == "0" and lines[1][column] == " "  # the unmapped task's cell is empty


def test_waiting_on_a_run_counts_a_mapped_task_s_instances(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(gateway, "dags", "trigger", "d", "--wait") == 0
    assert capsys.readouterr().out.splitlines() == [
        "triggered d run r", "  extract: success", "  files [3]: 2 success, 1 running", "run r succeeded",
    ]  # fmt: skip


@pytest.mark.parametrize("command", ["clear", "mark"])
def test_clear_and_mark_send_the_instances(gateway: Gateway, command: str) -> None:
    extra = ["--state", "success"] if command == "mark" else []
    argv = ["tasks", command, "d", "r", "-t", "files", "--map-index", "3", "--map-index", "1", *extra]
    assert _run(gateway, *argv) == 0
    ((method, path, _, body),) = gateway.asked
    assert (method, path, body["task_ids"], body["map_indexes"]) == ("POST", f"{RUN}/{command}", ["files"], [3, 1])


def test_map_index_without_a_task_is_refused_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    # The server is unreachable: the error proves nothing was sent.
    assert main(["tasks", "clear", "d", "r", "--map-index", "1", "--server", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: --map-index needs --task: the mapped task(s) whose instances to act on"]
