"""Every gRPC method, public and internal, fuzzed: never UNKNOWN, never INTERNAL (issue 14).

A whole Spinner runs in this process (tests/integration/gateway/live.py: dagsync, executor,
scheduler, logs, gateway). Each method gets messages made from its own descriptor by Hypothesis:
any field set or not, strings with NUL, control and right-to-left characters, 100 KB strings,
extreme and non-finite numbers, unknown enum values, nested and repeated messages, out-of-range
timestamps; and bytes that are no message of its type at all (random, truncated, another
message's). Each call is made as a caller the method lets in, so it reaches the handler: the
service a policy names (spinner/rpcpolicy.py) with its key, a task runner with a valid token for
the try its request names, and a user of the public API (an admin and a reader). An answer may be
any refusal (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED...) but not a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf import message_factory
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.executor.tokens import TokenSigner, token_secret
from spinner import rpcpolicy
from spinner.identity import audience_of, load_identity, on_behalf_of
from spinner.mapping import key_map_index
from spinner.rpcauth import RUNNER
from spinner.v1 import dagsync_pb2, executor_pb2, gateway_pb2, logs_pb2, scheduler_pb2
from tests.integration.gateway.live import Live, live_spinner

pytestmark = pytest.mark.xdist_group("grpc-fuzz")  # the module's Spinner starts on one worker only

CRASHES = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
SERVER = {  # service -> the Live address it is on ("" is the public API)
    "spinner.v1.SchedulerService": "scheduler",
    "spinner.v1.ExecutorService": "executor",
    "spinner.v1.RunnerService": "executor",
    "spinner.v1.LogsService": "logs",
    "spinner.v1.DagSyncService": "dagsync",
}
POLICIES = {**rpcpolicy.SCHEDULER, **rpcpolicy.EXECUTOR, **rpcpolicy.LOGS, **rpcpolicy.DAGSYNC}


@dataclass(frozen=True)
class Method:
    path: str  # /spinner.v1.Service/Name
    service: str
    request: d.Descriptor
    streams: bool

    @property
    def public(self) -> bool:
        return self.service not in SERVER


def _methods() -> list[Method]:
    found = []
    for module in (scheduler_pb2, executor_pb2, logs_pb2, dagsync_pb2, gateway_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                assert not m.client_streaming, f"{m.full_name}: client streaming is not fuzzed yet"
                found.append(
                    Method(f"/{service.full_name}/{m.name}", service.full_name, m.input_type, m.server_streaming)
                )
    return found


METHODS = {m.path: m for m in _methods()}
# An internal method the policy does not name is refused to everyone: the fuzz would reach no handler.
assert all(m.path in POLICIES for m in METHODS.values() if not m.public), "a method without a policy"

# --- messages from descriptors ----------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
STRINGS = st.one_of(
    _TEXT,
    st.sampled_from(["", "tutorial", "team_dag", "print_date", "..", "../../etc/passwd", "--help", "a\x00b",
                     "\x1b[31m", "\u202egnp.exe", "*", "%", "' OR 1=1 --", "spinner_tier_1_0"]),
    st.integers(1, 5).map(lambda n: "x" * (n * 20_000)),
)  # fmt: skip
_INT32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31)]))
_INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 10**12]))
_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    d.FieldDescriptor.TYPE_STRING: STRINGS,
    d.FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    d.FieldDescriptor.TYPE_BOOL: st.booleans(),
    d.FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    d.FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
    d.FieldDescriptor.TYPE_INT32: _INT32,
    d.FieldDescriptor.TYPE_SINT32: _INT32,
    d.FieldDescriptor.TYPE_SFIXED32: _INT32,
    d.FieldDescriptor.TYPE_INT64: _INT64,
    d.FieldDescriptor.TYPE_SINT64: _INT64,
    d.FieldDescriptor.TYPE_SFIXED64: _INT64,
    d.FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    d.FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    d.FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    d.FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
}


def _repeated(field: d.FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _value(field: d.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == d.FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), st.integers(-3, 99))
    if field.type == d.FieldDescriptor.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    return _SCALARS[field.type]


def messages(desc: d.Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of `desc`'s type: each field set or not; nesting stops at depth 4."""
    cls = message_factory.GetMessageClass(desc)
    if depth > 4:
        return st.just(cls())
    if desc.full_name == "google.protobuf.Timestamp":  # any seconds: far past, far future, negative nanos
        return st.builds(cls, seconds=_INT64, nanos=_INT32)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            fields[field.name] = st.dictionaries(_value(key, depth), _value(value, depth), max_size=3)
        elif _repeated(field):
            fields[field.name] = st.lists(_value(field, depth), max_size=3 if depth else 6)
        else:
            fields[field.name] = _value(field, depth)
    return st.fixed_dictionaries({}, optional=fields).map(lambda kwargs: _build(cls, kwargs))


def _build(cls: Any, kwargs: dict[str, Any]) -> Message:
    message = cls()
    for name, value in kwargs.items():
        field = getattr(message, name)
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, Message):
                    field[k].CopyFrom(v)
                else:
                    field[k] = v
        elif isinstance(value, list):
            field.extend(value)
        elif isinstance(value, Message):
            field.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def malformed(desc: d.Descriptor) -> st.SearchStrategy[bytes]:
    """Bytes that do not parse as `desc`: random, a valid message cut short, a wrong wire type."""
    cut = messages(desc).map(lambda m: m.SerializeToString()).filter(lambda b: len(b) > 1).map(lambda b: b[:-1])
    return st.one_of(st.binary(min_size=1, max_size=200), cut, st.just(b"\x0a\xff\xff\xff\xff\x0f"), st.just(b"\x08"))


# --- calls ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_spinner(Path(tmp_path_factory.mktemp("grpc-fuzz"))) as spinner:
        spinner.user("reader-1", ["reader"], "reader-password-1")
        yield spinner


class Caller:
    """Metadata and a finishing touch (a runner's token) for one method's calls."""

    def __init__(self, live: Live, method: Method, as_user: str) -> None:
        self.method = method
        self.metadata: list[tuple[str, str]] = []
        self.signer: TokenSigner | None = None
        if method.public:
            token = live.admin_token if as_user == "admin" else live.tokens[as_user]
            self.metadata = [("authorization", f"Bearer {token}")]
            return
        allowed = POLICIES[method.path]
        if allowed == RUNNER:
            self.signer = TokenSigner(token_secret("", live.home))
            return
        service = sorted(allowed)[0]  # type: ignore[arg-type]
        identity = load_identity(live.home / "identity", service)
        self.metadata = [("authorization", f"Bearer {identity.token(audience_of(method.path))}")]
        if service == "gateway":
            self.metadata += on_behalf_of("admin")

    def sign(self, request: Message) -> Message:
        """A runner's request with the token of the try it names (else it stops at the token check)."""
        fields = request.DESCRIPTOR.fields_by_name
        if self.signer is not None and "key" in fields and "token" in fields:
            key: Any = request.key  # type: ignore[attr-defined]
            signed = self.signer.sign(key.dag_id, key.run_id, key.task_id, key.try_number, key_map_index(key))
            request.token = signed  # type: ignore[attr-defined]
        return request


def call(channel: grpc.Channel, caller: Caller, payload: bytes) -> grpc.StatusCode:
    method = caller.method
    try:
        if method.streams:
            stream = channel.unary_stream(method.path)(payload, metadata=caller.metadata, timeout=3)
            for n, _ in enumerate(stream):
                if n >= 3:
                    stream.cancel()
                    break
        else:
            channel.unary_unary(method.path)(payload, metadata=caller.metadata, timeout=20)
    except grpc.RpcError as e:
        code = e.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and method.streams:
            return grpc.StatusCode.OK  # a follow that is still following
        if code == grpc.StatusCode.CANCELLED and method.streams:
            return grpc.StatusCode.OK
        assert code not in CRASHES, f"{method.path} -> {code.name}: {e.details()}"
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED, f"{method.path} answered nothing in 20 s"
        return code  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _address(live: Live, method: Method) -> str:
    return live.grpc_address if method.public else live.services[SERVER[method.service]]


CASES = [
    (path, who) for path, m in sorted(METHODS.items()) for who in (("admin", "reader-1") if m.public else ("service",))
]


@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize(
    ("path", "who"),
    CASES,
    ids=[f"{p.rsplit('/', 2)[1].removeprefix('spinner.v1.')}.{p.rsplit('/', 1)[1]}-{w}" for p, w in CASES],
)
def test_fuzzed_calls_never_crash_a_service(path: str, who: str, live: Live) -> None:
    method = METHODS[path]
    caller = Caller(live, method, who)
    with grpc.insecure_channel(_address(live, method)) as channel:

        @given(request=messages(method.request))
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def well_formed(request: Message) -> None:
            call(channel, caller, caller.sign(request).SerializeToString())

        @given(payload=malformed(method.request))
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def malformed_bytes(payload: bytes) -> None:
            call(channel, caller, payload)

        well_formed()
        malformed_bytes()


def test_the_fuzz_covers_every_method_of_every_service() -> None:
    """A service or method added to protos/ is fuzzed without anyone listing it here."""
    names = {m.path.rsplit("/", 2)[1] for m in METHODS.values()}
    assert names == {*SERVER, "spinner.v1.SpinnerApi"}, names
    assert len(METHODS) == sum(
        len(s.methods)
        for module in (scheduler_pb2, executor_pb2, logs_pb2, dagsync_pb2, gateway_pb2)
        for s in module.DESCRIPTOR.services_by_name.values()
    )
