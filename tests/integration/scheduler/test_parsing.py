"""Parsing DAG files in real child processes: forked from the warm fork server, or fresh when it is not used.

What a user sees: their file's DAGs, or an import error that says what went wrong; one team's file
can never change what another team's file sees, and a file that hangs is stopped with everything
it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.executor.backends.base import TryKey
from services.executor.pod_spec import PodSettings, build_pod
from services.scheduler.engine.parsing import Parser
from spinner.podpolicy import PodPolicy
from spinner.sdk.serialization import deserialize_dag

PARTITION = "spinner_tier_1_0"
EXAMPLES = Path(__file__).parents[3] / "examples" / "dags"
GOOD = """
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="{dag_id}", tier=Tier.TIER1) as dag:
    BashOperator(task_id="t", bash_command="echo hi")
print("chatter on stdout")
"""


@pytest.fixture(params=["forked", "fresh"])
async def parser(request: pytest.FixtureRequest) -> AsyncIterator[Parser]:
    p = Parser(fork_server=request.param == "forked")
    yield p
    await p.aclose()


POD_OVERRIDE = """
from spinner import DAG, BashOperator, Tier
with DAG(dag_id="{dag_id}", tier=Tier.TIER1) as dag:
    BashOperator(task_id="ok", bash_command="echo hi")
    BashOperator(task_id="{task_id}", bash_command="echo hi", executor_config={{"pod_override": {override}}})
"""


def _write(root: Path, name: str, source: str) -> Path:
    path = root / PARTITION / "team" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return path


async def test_a_good_file_gives_its_dags(parser: Parser, tmp_path: Path) -> None:
    result = await parser.parse(tmp_path, _write(tmp_path, "good.py", GOOD.format(dag_id="good")), 20)
    assert result.error is None
    assert [d["dag_id"] for d in result.dags] == ["good"]
    assert result.rel_path == f"{PARTITION}/team/good.py"


async def test_a_refused_pod_override_is_the_files_import_error_naming_the_task(parser: Parser, tmp_path: Path) -> None:
    override = {"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}
    source = POD_OVERRIDE.format(dag_id="escape", task_id="mount_root", override=repr(override))
    result = await parser.parse(tmp_path, _write(tmp_path, "escape.py", source), 20)
    assert result.dags == []  # the whole file: none of its DAGs is half-loaded
    assert result.error is not None
    assert (
        "DAG 'escape', task 'mount_root': executor_config pod_override spec.volumes[0].hostPath is not allowed: "
        "a volume from the node's own file system would escape the pod"
    ) in result.error
    assert not result.transient


async def test_the_schedulers_pod_policy_reaches_the_parse(tmp_path: Path) -> None:
    """The child has none of the platform's settings: the configured policy comes in as an argument."""
    init = {"name": "i", "image": "busybox:1.36"}
    ok = {"spec": {"nodeSelector": {"pool": "highmem"}, "initContainers": [init]}}
    privileged = {"spec": {"nodeSelector": {"pool": "highmem"},
                           "initContainers": [init | {"securityContext": {"privileged": True}}]}}  # fmt: skip
    policy = PodPolicy(
        node_selectors={"pool": ("highmem",)}, allowed_images=("busybox:*",), allow_extra_containers=True
    )
    for fork_server in (True, False):
        parser = Parser(fork_server=fork_server, pod_policy=policy)
        try:
            source = POD_OVERRIDE.format(dag_id="pools", task_id="big", override=repr(privileged))
            result = await parser.parse(tmp_path, _write(tmp_path, "pools.py", source), 20)
            assert result.error is not None
            assert "pod_override spec.initContainers[0].securityContext.privileged is not allowed" in result.error
            source = POD_OVERRIDE.format(dag_id="pools", task_id="big", override=repr(ok))
            result = await parser.parse(tmp_path, _write(tmp_path, "pools.py", source), 20)
            assert result.error is None, result.error  # refused by the default policy, allowed by this one
            assert [d["dag_id"] for d in result.dags] == ["pools"]
        finally:
            await parser.aclose()


async def test_the_examples_pod_override_passes_the_default_policy_at_parse_and_at_launch() -> None:
    """examples/dags/spinner_tier_2_0/ads/hourly_spend.py is documentation: what it shows must be allowed."""
    parser = Parser(fork_server=False)
    try:
        result = await parser.parse(EXAMPLES, EXAMPLES / "spinner_tier_2_0" / "ads" / "hourly_spend.py", 20)
    finally:
        await parser.aclose()
    assert result.error is None, result.error
    task = deserialize_dag(result.dags[0]).tasks["aggregate"]
    assert task.executor_config["pod_override"]["spec"]["volumes"][0]["name"] == "scratch"
    pod = build_pod(TryKey("ads_hourly_spend", "manual__1", "aggregate", 1), partition="spinner_tier_2_0",
                    argv=["python", "-m", "spinner.runner"], env={}, config=task.executor_config,
                    settings=PodSettings())  # fmt: skip
    assert pod["spec"]["tolerations"][0]["key"] == "cloud.google.com/gke-spot"
    assert pod["metadata"]["labels"]["team"] == "ads"


async def test_a_file_that_exits_hard_is_reported_as_a_dead_parser(parser: Parser, tmp_path: Path) -> None:
    result = await parser.parse(tmp_path, _write(tmp_path, "dies.py", "import os\nos._exit(3)\n"), 20)
    assert result.dags == []
    assert result.error is not None and "exit code 3" in result.error
    assert result.transient  # parsed again later: it may have been the machine


async def test_a_file_that_hangs_is_stopped_with_what_it_started(parser: Parser, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    source = (
        "import subprocess, time\n"
        f"p = subprocess.Popen(['sleep', '300'])\nopen({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "while True:\n    time.sleep(0.1)\n"
    )
    result = await parser.parse(tmp_path, _write(tmp_path, "hangs.py", source), 3)
    assert result.error is not None and "longer than 3 s" in result.error
    await _assert_gone(int(pid_file.read_text()))


async def _assert_gone(pid: int) -> None:
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("a process the DAG file started outlived the parse")


async def test_nothing_a_file_starts_outlives_its_parse(parser: Parser, tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    source = (
        "import subprocess\n"
        f"p = subprocess.Popen(['sleep', '300'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n" + GOOD.format(dag_id="starts_a_daemon")
    )
    result = await parser.parse(tmp_path, _write(tmp_path, "daemon.py", source), 20)
    assert [d["dag_id"] for d in result.dags] == ["starts_a_daemon"]
    await _assert_gone(int(pid_file.read_text()))


def _daemonizes(pid_file: Path) -> str:
    """DAG source that leaves `sleep 300` running as a daemon does: in a session of its own, its parent
    gone (a double fork), so neither the parse's process group nor its children reach it. The parse's
    subreaper does: the fork server, or a fresh worker itself (parse_worker.py)."""
    inner = (
        "import subprocess; "
        "p = subprocess.Popen(['sleep', '300'], start_new_session=True, stdout=subprocess.DEVNULL, "
        f"stderr=subprocess.DEVNULL); open({str(pid_file)!r}, 'w').write(str(p.pid))"
    )
    return f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {inner!r}], check=True)\n"


async def test_a_daemon_a_file_starts_in_a_session_of_its_own_does_not_outlive_its_parse(
    parser: Parser, tmp_path: Path
) -> None:
    pid_file = tmp_path / "daemon.pid"
    source = _daemonizes(pid_file) + GOOD.format(dag_id="double_forks")
    result = await parser.parse(tmp_path, _write(tmp_path, "double_fork.py", source), 20)
    assert [d["dag_id"] for d in result.dags] == ["double_forks"], result.error
    await _assert_gone(int(pid_file.read_text()))


async def test_a_daemon_of_a_file_that_hangs_goes_with_it(parser: Parser, tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    source = _daemonizes(pid_file) + "import time\nwhile True:\n    time.sleep(0.1)\n"
    result = await parser.parse(tmp_path, _write(tmp_path, "double_fork_hangs.py", source), 4)
    assert result.error is not None and "longer than 4 s" in result.error
    await _assert_gone(int(pid_file.read_text()))


async def test_one_file_cannot_change_what_the_next_file_sees(tmp_path: Path) -> None:
    parser = Parser()
    try:
        poison = "import spinner\nspinner.POISONED = True\nraise RuntimeError('after poisoning')\n"
        first = await parser.parse(tmp_path, _write(tmp_path, "poison.py", poison), 20)
        assert first.error is not None and "after poisoning" in first.error
        check = (
            "import spinner\nassert not hasattr(spinner, 'POISONED'), 'saw another file\\'s change'\n"
            + GOOD.format(dag_id="clean")
        )
        second = await parser.parse(tmp_path, _write(tmp_path, "clean.py", check), 20)
        assert second.error is None, second.error
        assert [d["dag_id"] for d in second.dags] == ["clean"]
    finally:
        await parser.aclose()


async def test_parsing_goes_on_after_the_fork_server_dies(tmp_path: Path) -> None:
    parser = Parser()
    try:
        assert (await parser.parse(tmp_path, _write(tmp_path, "a.py", GOOD.format(dag_id="a")), 20)).error is None
        server = parser._server
        assert server is not None and server._proc is not None
        server._proc.kill()
        await server._proc.wait()
        result = await parser.parse(tmp_path, _write(tmp_path, "b.py", GOOD.format(dag_id="b")), 20)
        assert result.error is None
        assert [d["dag_id"] for d in result.dags] == ["b"]
    finally:
        await parser.aclose()


async def test_a_dag_file_sees_none_of_the_platforms_settings(
    parser: Parser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler has the database URL, its home and its key in its environment; a DAG file being
    parsed has none of them (issue 14: a DAG file read SPINNER_DATABASE_URL at parse time)."""
    monkeypatch.setenv("SPINNER_DATABASE_URL", "mysql+aiomysql://spinner:secret@db/spinner")
    monkeypatch.setenv("SPINNER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPINNER_TOKEN_SECRET", "runner-token-key")
    monkeypatch.setenv("TEAM_SETTING", "kept")
    seen = tmp_path / "seen.txt"
    source = (
        "import os\n"
        f"open({str(seen)!r}, 'w').write(repr(sorted((k, v) for k, v in os.environ.items() "
        "if k.startswith('SPINNER_') or k == 'TEAM_SETTING')))\n" + GOOD.format(dag_id="probe")
    )
    result = await parser.parse(tmp_path, _write(tmp_path, "probe.py", source), 20)
    assert result.error is None, result.error
    assert seen.read_text() == "[('TEAM_SETTING', 'kept')]"
