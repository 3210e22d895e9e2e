"""Finding the scheduler that owns a DAG now: the holder of its partition's lease.

Every action on a DAG is carried out by the scheduler of the DAG's partition (docs/DESIGN.md,
"Partitions and tiers"). The gateway routes people's actions with this, the executor routes the
triggers its task runners ask for (TriggerDagRunOperator). One channel per scheduler address is
kept: a partition's leader changes rarely, and a new address gets a new channel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import grpc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from spinner.db.models import DagModel, PartitionLease
from spinner.grpcserver import channel
from spinner.v1 import scheduler_pb2_grpc


class RoutingError(Exception):
    """The DAG's scheduler cannot be reached; callers map the subclasses to their own errors."""


class DagNotFound(RoutingError):
    pass


class NoScheduler(RoutingError):
    pass


async def dag_partition(session: AsyncSession, dag_id: str) -> str | None:
    """The partition of an active DAG (None: no such active DAG)."""
    q = select(DagModel.partition).where(DagModel.dag_id == dag_id, DagModel.is_active.is_(True))
    value = (await session.execute(q)).scalar_one_or_none()
    return str(value) if value is not None else None


async def lease_address(session: AsyncSession, partition: str, now: dt.datetime) -> str | None:
    """The address of the scheduler holding the partition's lease, if the lease has not expired."""
    q = select(PartitionLease.address).where(PartitionLease.partition == partition, PartitionLease.expires_at >= now)
    value = (await session.execute(q)).scalar_one_or_none()
    return str(value) if value else None


class SchedulerRouter:
    def __init__(
        self,
        readers: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime],
        new_channel: Callable[[str], grpc.aio.Channel] = channel,
    ) -> None:
        self._readers = readers
        self._clock = clock
        self._new_channel = new_channel
        self._channels: dict[str, grpc.aio.Channel] = {}

    def stub(self, address: str) -> scheduler_pb2_grpc.SchedulerServiceStub:
        ch = self._channels.get(address)
        if ch is None:
            ch = self._channels[address] = self._new_channel(address)
        return scheduler_pb2_grpc.SchedulerServiceStub(ch)

    async def owner(self, dag_id: str) -> tuple[str, scheduler_pb2_grpc.SchedulerServiceStub]:
        """The partition of an active DAG and a stub to the scheduler that holds it now."""
        async with self._readers() as s:
            partition = await dag_partition(s, dag_id)
            if partition is None:
                raise DagNotFound(f"DAG '{dag_id}' not found")
            address = await lease_address(s, partition, self._clock())
        if address is None:
            raise NoScheduler(f"no scheduler holds partition {partition} right now; try again shortly")
        return partition, self.stub(address)

    async def aclose(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
