"""Settings come from the caller (flags), then SPINNER_ variables, then the TOML file, then defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from spinner.config import CommonSettings, ExecutorSettings, SchedulerSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SPINNER_ variable of the machine leaks in, and HOME is a scratch folder."""
    for key in list(os.environ):
        if key.startswith("SPINNER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "spinner.toml"
    path.write_text(
        'cluster = "from-toml"\n'
        "poll_interval = 7.0\n"
        'log_level = "DEBUG"\n'
        "[scheduler]\n"
        'partition = "spinner_tier_2_0"\n'
        "lease_seconds = 30.0\n"
        'log_level = "WARNING"\n'
        "[executor]\n"
        "max_parallel = 3\n"
    )
    monkeypatch.setenv("SPINNER_CONFIG_FILE", str(path))
    return path


def test_defaults_put_sqlite_in_home(tmp_path: Path) -> None:
    s = CommonSettings()
    home = tmp_path / "user" / ".spinner"
    assert s.home == home
    assert s.database_url == f"sqlite+aiosqlite:///{home / 'spinner.db'}"
    assert s.mqtt_url == "" and s.poll_interval == 1.0 and s.telemetry_exporter == "none"
    assert s.snapshot_root == home / "snapshots" and s.log_dir == home / "logs"


def test_database_url_follows_a_home_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_HOME", str(tmp_path / "state"))
    assert CommonSettings().database_url == f"sqlite+aiosqlite:///{tmp_path / 'state' / 'spinner.db'}"


def test_an_explicit_database_url_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_DATABASE_URL", "mysql+aiomysql://u:p@db/spinner")
    assert CommonSettings().database_url == "mysql+aiomysql://u:p@db/spinner"


def test_init_beats_env_beats_toml_beats_defaults(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_POLL_INTERVAL", "3")
    monkeypatch.setenv("SPINNER_LEASE_SECONDS", "20")
    s = SchedulerSettings(lease_seconds=5)
    assert s.lease_seconds == 5.0  # init over env and TOML
    assert s.poll_interval == 3.0  # env over TOML
    assert s.cluster == "from-toml"  # TOML top level over default
    assert s.partition == "spinner_tier_2_0"  # the service's own table
    assert s.heartbeat_timeout == 30.0  # default: six heartbeat intervals of 5 s


def test_the_heartbeat_timeout_follows_the_heartbeat_interval_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_RUNNER_HEARTBEAT_INTERVAL", "2")
    assert SchedulerSettings().heartbeat_timeout == 12.0
    assert ExecutorSettings().runner_heartbeat_interval == 2.0  # the same setting tells the runners
    assert SchedulerSettings(heartbeat_timeout=45).heartbeat_timeout == 45.0


def test_the_service_table_overrides_top_level_keys_for_that_service_only(config_file: Path) -> None:
    assert SchedulerSettings().log_level == "WARNING"
    assert ExecutorSettings().log_level == "DEBUG"
    assert ExecutorSettings().max_parallel == 3
    common = CommonSettings()
    assert common.cluster == "from-toml" and common.log_level == "DEBUG"
    assert not hasattr(common, "partition")  # other services' tables do not leak in


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPINNER_POLL_INTERVAL", "-1"),
        ("SPINNER_POLL_INTERVAL", "soon"),
        ("SPINNER_TELEMETRY_EXPORTER", "bogus"),
    ],
)
def test_bad_env_values_are_clear_errors(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as e:
        CommonSettings()
    field = name.removeprefix("SPINNER_").lower()
    assert [err["loc"] for err in e.value.errors()] == [(field,)]


def test_bad_toml_values_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[scheduler]\npoll_interval = -1\n")
    monkeypatch.setenv("SPINNER_CONFIG_FILE", str(path))
    with pytest.raises(ValidationError) as e:
        SchedulerSettings()
    assert [err["loc"] for err in e.value.errors()] == [("poll_interval",)]
    assert "greater than 0" in str(e.value)


def test_bad_init_values_are_clear_errors() -> None:
    with pytest.raises(ValidationError) as e:
        CommonSettings(telemetry_exporter="bogus")
    assert "telemetry_exporter" in str(e.value) and "'none', 'console' or 'otlp'" in str(e.value)


def test_settings_are_immutable() -> None:
    s = CommonSettings()
    with pytest.raises(ValidationError):
        s.cluster = "other"  # type: ignore[misc]


def test_the_scheduler_and_the_executor_read_one_pod_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Top-level keys (or SPINNER_K8S_*) reach both: the parser checks DAG files against what launch enforces."""
    path = tmp_path / "spinner.toml"
    path.write_text(
        'k8s_allowed_images = ["registry.example.com/ml/*"]\n'
        'k8s_allowed_node_selectors = { pool = ["highmem"] }\n'
        "k8s_allow_extra_containers = true\n"
    )
    monkeypatch.setenv("SPINNER_CONFIG_FILE", str(path))
    monkeypatch.setenv("SPINNER_K8S_MAX_MEMORY", "32Gi")
    policy = SchedulerSettings().pod_policy()
    assert policy == ExecutorSettings().pod_policy()
    assert policy.allowed_images == ("registry.example.com/ml/*",) and policy.node_selectors == {"pool": ("highmem",)}
    assert policy.allow_extra_containers and policy.max_memory == "32Gi"
    assert "hostPath" not in policy.volume_kinds and "emptyDir" in policy.volume_kinds  # the defaults stay


def test_a_pod_policy_that_allows_host_paths_stops_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINNER_K8S_ALLOWED_VOLUME_KINDS", '["emptyDir", "hostPath"]')
    with pytest.raises(ValidationError, match="hostPath"):
        ExecutorSettings()
