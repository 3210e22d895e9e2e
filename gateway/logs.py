"""A task try's log as the gateway hands it on: one chunk read, or the log followed as the try writes it.

Both come from the logs service only (its Read and Follow); the gateway never looks for a log itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from gateway.errors import Unavailable, from_rpc_error
from gateway.views import LogInfo, LogLine
from spinner.v1 import logs_pb2

SERVICE = "the logs service"


def log_info(reply: logs_pb2.ReadLogResponse, try_number: int) -> LogInfo:
    return LogInfo(
        lines=[LogLine(line.offset, line.text, line.section) for line in reply.lines],
        next_offset=reply.next_offset,
        source=reply.source,
        complete=reply.complete,
        try_number=try_number,
        readiness=reply.readiness,
        fallback_reason=reply.fallback_reason,
    )


class LogFollow:
    """An open Follow call whose first chunk has arrived (so a refusal was a plain error, not a broken stream).

    `chunks()` yields that chunk, then each one the logs service sends, until the one that says the
    log is complete; None when nothing came for `idle` seconds (a caller keeping a connection alive
    says so; with `idle` None it just waits). It ends early, without error, when the gateway stops
    (`closing` is set). Leaving the iteration, or `close()`, cancels the call.
    """

    def __init__(self, call: Any, first: LogInfo, closing: asyncio.Event) -> None:
        self._call = call
        self.first = first
        self._closing = closing

    @classmethod
    async def open(cls, call: Any, try_number: int, closing: asyncio.Event) -> LogFollow:
        try:
            reply = await call.read()
        except grpc.aio.AioRpcError as e:
            call.cancel()
            raise from_rpc_error(e, SERVICE) from None
        except BaseException:
            call.cancel()
            raise
        if reply is grpc.aio.EOF:  # the service ends a follow only after a complete chunk: this is a broken call
            call.cancel()
            raise Unavailable(f"{SERVICE} ended the log stream before sending anything")
        return cls(call, log_info(reply, try_number), closing)

    def close(self) -> None:
        self._call.cancel()

    async def chunks(self, idle: float | None) -> AsyncIterator[LogInfo | None]:
        """Raises GatewayError when the logs service fails the stream after it started."""
        yield self.first
        if self.first.complete:
            self.close()
            return
        read: asyncio.Future[Any] | None = None
        stop = asyncio.ensure_future(self._closing.wait())
        try:
            while True:
                read = read or asyncio.ensure_future(self._call.read())
                done, _ = await asyncio.wait({read, stop}, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    return
                if read not in done:
                    yield None
                    continue
                try:
                    reply = read.result()
                except grpc.aio.AioRpcError as e:
                    raise from_rpc_error(e, SERVICE) from None
                read = None
                if reply is grpc.aio.EOF:
                    return
                chunk = log_info(reply, self.first.try_number)
                yield chunk
                if chunk.complete:
                    return
        finally:
            stop.cancel()
            if read is not None:
                read.cancel()
            self.close()
