"""DagSyncService: thin gRPC layer over DagSync."""

from __future__ import annotations

import grpc

from services.dagsync.engine import DagSync, SyncStatus
from spinner.v1 import dagsync_pb2, dagsync_pb2_grpc


def _snapshot(status: SyncStatus) -> dagsync_pb2.Snapshot:
    return dagsync_pb2.Snapshot(
        bundle_version=status.version,
        path=status.path,
        synced_at=status.synced_at.isoformat() if status.synced_at else "",
        file_count=status.file_count,
        last_error=status.last_error,
        stale_seconds=round(status.stale_seconds, 3),
        last_attempt_at=status.last_attempt_at.isoformat() if status.last_attempt_at else "",
        source=status.source,
    )


class DagSyncServicer(dagsync_pb2_grpc.DagSyncServiceServicer):
    def __init__(self, sync: DagSync) -> None:
        self._sync = sync

    async def GetSnapshot(
        self, request: dagsync_pb2.GetSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> dagsync_pb2.Snapshot:
        return _snapshot(self._sync.status())

    async def SyncNow(
        self, request: dagsync_pb2.SyncNowRequest, context: grpc.aio.ServicerContext
    ) -> dagsync_pb2.Snapshot:
        await self._sync.sync_once(force=True)
        return _snapshot(self._sync.status())
