"""Settings come from flags, then SPINNER_ variables, then the TOML file, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from spinner.config import CommonSettings, SchedulerSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SPINNER_"):
            monkeypatch.delenv(key)


def test_defaults_put_sqlite_in_home(tmp_path: Path) -> None:
    s = CommonSettings(home=tmp_path)
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'spinner.db'}"
    assert s.mqtt_url == "" and s.snapshot_root == tmp_path / "snapshots"


def test_precedence_flags_env_toml_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "spinner.toml"
    config.write_text(
        'cluster = "from-toml"\npoll_interval = 7.0\nlog_level = "DEBUG"\n'
        '[scheduler]\npartition = "spinner_tier_2_0"\nlease_seconds = 30.0\n'
    )
    monkeypatch.setenv("SPINNER_CONFIG_FILE", str(config))
    monkeypatch.setenv("SPINNER_POLL_INTERVAL", "3")
    s = SchedulerSettings(lease_seconds=5)
    assert s.cluster == "from-toml"  # TOML over default
    assert s.poll_interval == 3.0  # env over TOML
    assert s.lease_seconds == 5.0  # flag over TOML
    assert s.partition == "spinner_tier_2_0"  # the service's own table
    assert CommonSettings().cluster == "from-toml"


@pytest.mark.parametrize(("name", "value"), [("SPINNER_POLL_INTERVAL", "-1"), ("SPINNER_TELEMETRY_EXPORTER", "bogus")])
def test_bad_values_are_clear_errors(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as e:
        CommonSettings()
    assert name.removeprefix("SPINNER_").lower() in str(e.value)


def test_settings_are_immutable() -> None:
    s = CommonSettings()
    with pytest.raises(ValidationError):
        s.cluster = "other"  # type: ignore[misc]
