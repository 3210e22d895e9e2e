"""Who is calling: signed, short-lived service tokens for every internal gRPC call.

Each service (scheduler, executor, gateway, dagsync, logs) has an Ed25519 key pair. Its private key
(`<identity_dir>/<name>.key`) signs its tokens; every service trusts the public keys in the same
folder (`<name>.pub`), so a service can only ever speak as itself: a verifier holds no key that
could mint a token. Standalone makes the pairs in its home on first start (`ensure_identities`); in
Kubernetes each service's private key comes from its own Secret and the public keys from one
ConfigMap, projected into one folder (deploy/).

A token names its issuer, its audience (the service called: a token given to the executor is no good
at the scheduler) and an expiry five minutes on:

    v1.<base64url payload JSON {"iss", "aud", "iat", "exp"}>.<base64url Ed25519 signature>

One algorithm, no header to trust: there is nothing to negotiate. Clients attach it as
`authorization: Bearer <token>` (`CallerCredentials`, a client interceptor; the audience comes from
the method called); servers check it (spinner/rpcauth.py). The gateway also says for whom it acts
(`spinner-on-behalf-of: <username>`), a user it has already authorised.

Task runners have no service key: they hold their try's runner token instead (services/executor/tokens.py).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

SERVICES = ("scheduler", "executor", "gateway", "dagsync", "logs")
# The audience of a call, from its gRPC service.
AUDIENCES = {
    "spinner.v1.SchedulerService": "scheduler",
    "spinner.v1.ExecutorService": "executor",
    "spinner.v1.RunnerService": "executor",
    "spinner.v1.LogsService": "logs",
    "spinner.v1.DagSyncService": "dagsync",
}
TOKEN_SECONDS = 300
REFRESH_BEFORE = 150  # a cached token is renewed when it has less than this left
LEEWAY = 30  # clocks of two machines may differ this much
AUTHORIZATION = "authorization"
ON_BEHALF_OF = "spinner-on-behalf-of"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


class IdentityError(Exception):
    """A service key that cannot be read or made; the service does not start."""


class Refused(Exception):
    """A token that does not prove who is calling. The message says why (it is safe to show)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def audience_of(method: str) -> str:
    """The service a full method name ("/spinner.v1.SchedulerService/TriggerDagRun") belongs to."""
    service = method.lstrip("/").split("/", 1)[0]
    return AUDIENCES.get(service, service)


def _key_paths(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / f"{name}.key", folder / f"{name}.pub"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_identity(folder: Path, name: str) -> None:
    """Makes `name`'s key pair in `folder` unless it has one (standalone, a developer's services)."""
    if not _NAME.match(name):
        raise IdentityError(f"{name!r} is not a service name")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    private, public = _key_paths(folder, name)
    with _locked(folder):
        if private.exists():
            return
        key = Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        _write(public, (_b64(raw) + "\n").encode(), 0o644)  # first: a signed token is never untrusted
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(private, pem, 0o600)
        log.info("made the service key of %s in %s", name, folder)


def ensure_identities(folder: Path, names: Sequence[str] = SERVICES) -> None:
    for name in names:
        ensure_identity(folder, name)


@dataclass
class Identity:
    """A service's own key: signs its tokens, one per audience, renewed before they expire."""

    name: str
    key: Ed25519PrivateKey
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._cache: dict[str, tuple[str, float]] = {}

    def token(self, audience: str) -> str:
        now = self.clock()
        cached = self._cache.get(audience)
        if cached is not None and cached[1] - now > REFRESH_BEFORE:
            return cached[0]
        exp = int(now) + TOKEN_SECONDS
        payload = json.dumps({"iss": self.name, "aud": audience, "iat": int(now), "exp": exp}, separators=(",", ":"))
        body = _b64(payload.encode())
        signature = self.key.sign(f"v1.{body}".encode())
        token = f"v1.{body}.{_b64(signature)}"
        self._cache[audience] = (token, exp)
        return token

    def interceptors(self) -> list[Any]:
        return [CallerCredentials(self), StreamCallerCredentials(self)]


def load_identity(folder: Path, name: str, *, create: bool = True) -> Identity:
    """`name`'s key from `folder`; made there first when missing and `create` (a writable home)."""
    private, _ = _key_paths(folder, name)
    if create and not private.exists():
        try:
            ensure_identity(folder, name)
        except OSError as e:
            raise IdentityError(f"no service key at {private}, and none can be made there: {e}") from None
    try:
        key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    except FileNotFoundError:
        raise IdentityError(
            f"no service key at {private}: give each service its key (standalone makes them in its home)"
        ) from None
    except (OSError, ValueError) as e:
        raise IdentityError(f"the service key at {private} cannot be read: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"the service key at {private} is not an Ed25519 key")
    return Identity(name, key)


class Verifier:
    """Checks tokens against the public keys in a folder; reads the folder again when a token names
    an issuer it does not know and the folder has changed since, so a key added later is trusted."""

    def __init__(self, folder: Path, audience: str, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.audience = audience
        self._clock = clock
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._version: int | None = None
        self._reload()

    def _folder_version(self) -> int | None:
        try:
            return self.folder.stat().st_mtime_ns  # a key written or renamed into it changes it
        except OSError:
            return None

    def _reload(self) -> None:
        self._version = self._folder_version()
        keys: dict[str, Ed25519PublicKey] = {}
        for path in sorted(self.folder.glob("*.pub")) if self.folder.is_dir() else []:
            name = path.stem
            if not _NAME.match(name):
                continue
            try:
                keys[name] = Ed25519PublicKey.from_public_bytes(_unb64(path.read_text().strip()))
            except (OSError, ValueError, binascii.Error) as e:
                log.warning("ignoring the public key %s: %s", path, e)
        self._keys = keys

    def _key(self, issuer: str) -> Ed25519PublicKey | None:
        key = self._keys.get(issuer)
        if key is None and (self._version is None or self._folder_version() != self._version):
            self._reload()
            key = self._keys.get(issuer)
        return key

    def verify(self, token: str) -> str:
        """The issuer of a valid token for this audience; Refused otherwise."""
        if len(token) > 2048:
            raise Refused("the service token is too long")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != "v1":
            raise Refused("not a Spinner service token")
        try:
            payload = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, binascii.Error):
            raise Refused("not a Spinner service token") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("iss"), str):
            raise Refused("not a Spinner service token")
        issuer = str(payload["iss"])
        key = self._key(issuer)
        if key is None:
            raise Refused(f"no trusted key for the service {issuer[:40]!r}")
        try:
            key.verify(signature, f"v1.{parts[1]}".encode())
        except InvalidSignature:
            raise Refused("the service token's signature is not valid") from None
        if payload.get("aud") != self.audience:
            raise Refused(f"the service token is for {str(payload.get('aud'))[:40]!r}, not {self.audience!r}")
        now = self._clock()
        exp, iat = payload.get("exp"), payload.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int) or exp - iat > TOKEN_SECONDS + LEEWAY:
            raise Refused("the service token has no valid lifetime")
        if now > exp + LEEWAY:
            raise Refused("the service token has expired")
        if iat > now + LEEWAY:
            raise Refused("the service token is not valid yet")
        return issuer


class _Credentials:
    """Adds `authorization: Bearer <token>` for the called service to a call."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
        token = self._identity.token(audience_of(method))
        metadata = [(k, v) for k, v in (details.metadata or ()) if k != AUTHORIZATION]
        metadata.append((AUTHORIZATION, f"Bearer {token}"))
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, grpc.aio.Metadata(*metadata), details.credentials,
            details.wait_for_ready,
        )  # fmt: skip


# Two classes, not one with both methods: a channel files each interceptor under the first kind it is.
class CallerCredentials(_Credentials, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class StreamCallerCredentials(_Credentials, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


def on_behalf_of(username: str) -> list[tuple[str, str]]:
    """The metadata with which the gateway says which (already authorised) user it acts for."""
    return [(ON_BEHALF_OF, username[:200])]
