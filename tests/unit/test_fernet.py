"""The Fernet key: from the settings or the home folder, rotation, clear errors; no key, no gateway or executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from spinner.cli.main import main
from spinner.fernet import CannotDecrypt, FernetKeyError, SecretBox, ensure_key_file, load_box, new_key, task_environ


def test_values_decrypt_with_any_listed_key_and_encrypt_with_the_first() -> None:
    old, new = new_key(), new_key()
    stored = SecretBox(old).encrypt("v")
    rotated = SecretBox(f"{new},{old}")
    assert rotated.decrypt(stored, "x") == "v"
    assert SecretBox(new).decrypt(rotated.encrypt("w"), "x") == "w"
    with pytest.raises(CannotDecrypt, match="variable 'k' cannot be decrypted with this service's Fernet key"):
        SecretBox(new).decrypt(stored, "variable 'k'")
    with pytest.raises(CannotDecrypt):
        SecretBox(new).decrypt("not a token", "x")


def test_a_bad_or_missing_key_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FernetKeyError, match="not valid: it must be 32 url-safe base64-encoded bytes"):
        SecretBox("short")
    with pytest.raises(FernetKeyError, match=r"the executor needs a Fernet key .* set SPINNER_FERNET_KEY"):
        load_box("", tmp_path, "executor")
    path = ensure_key_file(tmp_path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert ensure_key_file(tmp_path).read_text() == path.read_text()  # made once
    box = load_box("", tmp_path, "executor")
    assert load_box(path.read_text().strip(), Path("/nonexistent"), "gateway").decrypt(box.encrypt("v"), "x") == "v"


def test_none_of_the_platforms_settings_are_handed_on_to_dag_code() -> None:
    env = {"SPINNER_FERNET_KEY": "k", "SPINNER_TOKEN_SECRET": "t", "SPINNER_SECRET_KEY": "s", "PATH": "/bin",
           "SPINNER_DATABASE_URL": "mysql+aiomysql://spinner:pw@db/spinner", "SPINNER_HOME": "/var/lib/spinner",
           "SPINNER_IDENTITY_DIR": "/etc/spinner/identity", "AWS_PROFILE": "team"}  # fmt: skip
    assert task_environ(env) == {"PATH": "/bin", "AWS_PROFILE": "team"}  # the user's own variables stay


@pytest.mark.parametrize("service", ["executor", "gateway"])
def test_a_service_without_a_key_refuses_to_start(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPINNER_FERNET_KEY", raising=False)
    with pytest.raises(SystemExit) as e:
        main([service, "--home", str(tmp_path), "--port", "0"])
    assert isinstance(e.value.code, str) and e.value.code.startswith(f"error: the {service} needs a Fernet key")
