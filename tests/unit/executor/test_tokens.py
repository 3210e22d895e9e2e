"""Runner tokens: each speaks for one try only, an instance of a mapped task included."""

from __future__ import annotations

from services.executor.backends.base import TryKey
from services.executor.tokens import TokenSigner
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
