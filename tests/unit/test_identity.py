"""Service tokens (spinner/identity.py) and the call matrix (spinner/rpcpolicy.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from spinner import rpcpolicy
from spinner.identity import (
    REFRESH_BEFORE,
    TOKEN_SECONDS,
    IdentityError,
    Refused,
    Verifier,
    audience_of,
    ensure_identities,
    load_identity,
)
from spinner.rpcauth import RUNNER
from spinner.v1 import dagsync_pb2, executor_pb2, logs_pb2, scheduler_pb2


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_proves_its_issuer_to_its_audience_only(tmp_path: Path) -> None:
    ensure_identities(tmp_path)
    token = load_identity(tmp_path, "gateway").token("scheduler")
    assert Verifier(tmp_path, "scheduler").verify(token) == "gateway"
    with pytest.raises(Refused, match="is for 'scheduler', not 'executor'"):
        Verifier(tmp_path, "executor").verify(token)


def test_a_token_signed_by_another_key_or_changed_is_refused(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ensure_identities(ours)
    ensure_identities(theirs)  # the same names, other keys: an attacker's own "gateway"
    forged = load_identity(theirs, "gateway").token("scheduler")
    with pytest.raises(Refused, match="signature is not valid"):
        Verifier(ours, "scheduler").verify(forged)
    # The payload of a real token changed to claim another issuer: its signature no longer holds.
    real = load_identity(ours, "executor").token("scheduler")
    version, body, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["iss"] = "gateway"
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Refused, match="signature is not valid"):
        Verifier(ours, "scheduler").verify(f"{version}.{changed}.{signature}")
    for junk in ("", "Bearer", "v1.x.y", "v2.a.b", "a" * 5000):
        with pytest.raises(Refused):
            Verifier(ours, "scheduler").verify(junk)


def test_a_token_expires_and_is_renewed_before_it_does(tmp_path: Path) -> None:
    ensure_identities(tmp_path)
    clock = Clock()
    identity = load_identity(tmp_path, "scheduler")
    identity.clock = clock
    verifier = Verifier(tmp_path, "executor", clock=clock)
    first = identity.token("executor")
    clock.now += TOKEN_SECONDS - REFRESH_BEFORE - 1
    assert identity.token("executor") == first  # cached while it has long enough left
    clock.now += 2
    assert identity.token("executor") != first  # renewed before it expires
    clock.now += TOKEN_SECONDS + 60
    with pytest.raises(Refused, match="expired"):
        verifier.verify(first)


def test_a_service_key_made_after_the_verifier_started_is_trusted(tmp_path: Path) -> None:
    ensure_identities(tmp_path, ["scheduler"])
    verifier = Verifier(tmp_path, "scheduler")
    late = load_identity(tmp_path, "executor")  # made now, as a service starting later makes its own
    assert verifier.verify(late.token("scheduler")) == "executor"


def test_a_missing_key_that_cannot_be_made_stops_the_service_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=r"no service key at .*gateway\.key"):
        load_identity(tmp_path / "absent", "gateway", create=False)
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(IdentityError, match="cannot be read"):
        load_identity(tmp_path, "bad", create=False)


def test_the_private_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    ensure_identities(tmp_path, ["logs"])
    assert (tmp_path / "logs.key").stat().st_mode & 0o077 == 0
    assert audience_of("/spinner.v1.RunnerService/Start") == "executor"


@pytest.mark.parametrize(
    ("descriptor", "service", "policy"),
    [
        (scheduler_pb2.DESCRIPTOR, "SchedulerService", rpcpolicy.SCHEDULER),
        (executor_pb2.DESCRIPTOR, "ExecutorService", rpcpolicy.EXECUTOR),
        (executor_pb2.DESCRIPTOR, "RunnerService", rpcpolicy.EXECUTOR),
        (logs_pb2.DESCRIPTOR, "LogsService", rpcpolicy.LOGS),
        (dagsync_pb2.DESCRIPTOR, "DagSyncService", rpcpolicy.DAGSYNC),
    ],
)
def test_every_internal_method_says_who_may_call_it(descriptor: object, service: str, policy: object) -> None:
    methods = descriptor.services_by_name[service].methods  # type: ignore[attr-defined]
    assert isinstance(policy, dict)
    missing = [m.name for m in methods if f"/spinner.v1.{service}/{m.name}" not in policy]
    assert not missing, f"{service} methods nobody may call (add them to spinner/rpcpolicy.py): {missing}"
    if service == "RunnerService":
        assert all(policy[f"/spinner.v1.{service}/{m.name}"] == RUNNER for m in methods)


def test_a_service_without_its_key_does_not_start_and_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spinner.cli.main import main

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("SPINNER_IDENTITY_DIR", str(tmp_path / "a-file" / "keys"))
    monkeypatch.setenv("SPINNER_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as stopped:
        main(["logs", "--port", "0"])
    assert f"no service key at {tmp_path}/a-file/keys/logs.key" in str(stopped.value.code)


def test_spinner_identities_makes_every_services_key_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spinner.cli.main import main

    assert main(["identities", str(tmp_path / "keys")]) == 0
    first = (tmp_path / "keys" / "executor.key").read_bytes()
    assert main(["identities", str(tmp_path / "keys")]) == 0  # kept, never replaced
    assert (tmp_path / "keys" / "executor.key").read_bytes() == first
    out = capsys.readouterr().out
    assert "kubectl create secret generic spinner-identity-executor" in out and "kept" in out
