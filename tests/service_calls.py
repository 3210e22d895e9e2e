"""Calls to an internal service as one of Spinner's services would make them (spinner/identity.py):
a test stands in for the gateway or the scheduler with that service's key from the test's home."""

from __future__ import annotations

from pathlib import Path

import grpc

from spinner.grpcserver import channel
from spinner.identity import load_identity


def service_channel(address: str, identities: Path, caller: str = "gateway") -> grpc.aio.Channel:
    """A channel whose calls carry `caller`'s service token; `identities` is the services' key folder
    (settings.identities, <home>/identity by default), where the key is made when missing."""
    return channel(address, identity=load_identity(identities, caller))
