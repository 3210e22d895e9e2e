"""LogsService: thin gRPC layer over LogReader."""

from __future__ import annotations

import grpc

from services.logs.engine import InvalidLogRequest, LogError, LogNotFound, LogReader
from spinner.v1 import logs_pb2, logs_pb2_grpc

_CODES: dict[type[LogError], grpc.StatusCode] = {
    LogNotFound: grpc.StatusCode.NOT_FOUND,
    InvalidLogRequest: grpc.StatusCode.INVALID_ARGUMENT,
}


class LogsServicer(logs_pb2_grpc.LogsServiceServicer):
    def __init__(self, reader: LogReader) -> None:
        self._reader = reader

    async def Read(
        self, request: logs_pb2.ReadLogRequest, context: grpc.aio.ServicerContext
    ) -> logs_pb2.ReadLogResponse:
        key = request.key
        try:
            chunk = await self._reader.read(
                key.dag_id, key.run_id, key.task_id, key.try_number, request.from_offset, request.max_lines
            )
        except LogError as e:
            await context.abort(_CODES.get(type(e), grpc.StatusCode.FAILED_PRECONDITION), str(e))
            raise
        first = request.from_offset
        return logs_pb2.ReadLogResponse(
            lines=[logs_pb2.LogLine(offset=first + i, text=text) for i, text in enumerate(chunk.lines)],
            next_offset=chunk.next_offset,
            source=chunk.source,
            complete=chunk.complete,
        )
