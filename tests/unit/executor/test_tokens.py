"""Runner tokens: each speaks for one try only, an instance of a mapped task included."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.executor.backends.base import TryKey
from services.executor.tokens import TokenSigner, token_secret
from spinner.v1 import common_pb2

SIGNER = TokenSigner("s")


def test_an_unmapped_trys_token_is_what_it_always_was() -> None:
    # Signed before map_index existed: a runner started before an upgrade keeps its token.
    old = "e00629b3d0d674f88194e71c7ad36a1e59abfba67fbbaeaf803ed94285fc1bc1"
    assert SIGNER.sign("d", "r", "t", 1) == old == SIGNER.sign_try(TryKey("d", "r", "t", 1))
    assert SIGNER.verify(common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="t", try_number=1), old)
    explicit = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="t", try_number=1, map_index=-1)
    assert SIGNER.verify(explicit, old)


def test_one_instances_token_never_speaks_for_another() -> None:
    zero, one = TryKey("d", "r", "t", 1, map_index=0), TryKey("d", "r", "t", 1, map_index=1)
    token = SIGNER.sign_try(zero)
    assert SIGNER.verify_try(zero, token)
    assert not SIGNER.verify_try(one, token)
    assert not SIGNER.verify_try(TryKey("d", "r", "t", 1), token)  # nor for the unmapped row
    assert not SIGNER.verify_try(zero, SIGNER.sign("d", "r", "t", 1))
    pb = common_pb2.TaskTryKey(dag_id="d", run_id="r", task_id="t", try_number=1, map_index=0)
    assert SIGNER.verify(pb, token)
    pb.map_index = 1
    assert not SIGNER.verify(pb, token)


def test_an_executor_restarted_on_the_same_home_signs_with_the_same_key(tmp_path: Path) -> None:
    """No SPINNER_TOKEN_SECRET: the key is made once in the home, so runners started before a restart
    are still heard after it; another home (another installation) has another key."""
    first = TokenSigner(token_secret("", tmp_path / "home"))
    again = TokenSigner(token_secret("", tmp_path / "home"))
    other = TokenSigner(token_secret("", tmp_path / "elsewhere"))
    token = first.sign("etl", "manual__1", "load", 1)
    assert again.sign("etl", "manual__1", "load", 1) == token
    assert other.sign("etl", "manual__1", "load", 1) != token
    key_file = tmp_path / "home" / "runner_token_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # the owner's only
    assert TokenSigner(token_secret("configured", tmp_path / "home")).sign("etl", "manual__1", "load", 1) != token


def test_an_emptied_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "runner_token_key").write_text("\n")
    with pytest.raises(ValueError, match="runner_token_key is empty"):
        token_secret("", tmp_path)
