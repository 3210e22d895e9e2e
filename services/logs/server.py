"""LogsService: thin gRPC layer over LogReader."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.logs.engine import InvalidLogRequest, LogError, LogNotFound, LogReader, LogUnavailable
from services.logs.sources.base import LogChunk
from spinner.mapping import key_map_index
from spinner.tasklog import LogId
from spinner.v1 import common_pb2, logs_pb2, logs_pb2_grpc

_CODES: dict[type[LogError], grpc.StatusCode] = {
    LogNotFound: grpc.StatusCode.NOT_FOUND,
    LogUnavailable: grpc.StatusCode.UNAVAILABLE,
    InvalidLogRequest: grpc.StatusCode.INVALID_ARGUMENT,
}


def _response(chunk: LogChunk) -> logs_pb2.ReadLogResponse:
    return logs_pb2.ReadLogResponse(
        lines=[logs_pb2.LogLine(offset=line.offset, text=line.text, section=line.section) for line in chunk.lines],
        next_offset=chunk.next_offset,
        source=chunk.source,
        complete=chunk.complete,
        readiness=chunk.readiness,
        fallback_reason=chunk.fallback_reason,
    )


class LogsServicer(logs_pb2_grpc.LogsServiceServicer):
    def __init__(self, reader: LogReader) -> None:
        self._reader = reader

    @staticmethod
    def _key(key: common_pb2.TaskTryKey, from_offset: int) -> LogId:
        return LogReader.check(key.dag_id, key.run_id, key.task_id, key.try_number, from_offset, key_map_index(key))

    async def Read(
        self, request: logs_pb2.ReadLogRequest, context: grpc.aio.ServicerContext
    ) -> logs_pb2.ReadLogResponse:
        try:
            key = self._key(request.key, request.from_offset)
            chunk = await self._reader.read(key, request.from_offset, request.max_lines)
        except LogError as e:
            await context.abort(_CODES.get(type(e), grpc.StatusCode.FAILED_PRECONDITION), str(e))
            raise
        return _response(chunk)

    async def Follow(
        self, request: logs_pb2.FollowLogRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[logs_pb2.ReadLogResponse]:
        try:
            key = self._key(request.key, request.from_offset)
            async for chunk in self._reader.follow(key, request.from_offset):
                yield _response(chunk)
        except LogError as e:
            await context.abort(_CODES.get(type(e), grpc.StatusCode.FAILED_PRECONDITION), str(e))
