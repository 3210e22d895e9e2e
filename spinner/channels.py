"""How every internal gRPC channel reconnects: quickly, whoever restarts.

gRPC's default reconnect backoff grows to 120 s: a runner whose executor was away for half a minute
(a restart on a loaded machine) would see every call fail at once with the cached "connection
refused" for a minute after the new executor is up. Internal services restart in seconds, so a
channel tries again every 2 s at most. Plain data: the runner imports it without grpc's aio side.
"""

from __future__ import annotations

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
