"""Partition leases: one scheduler writes for a partition at a time, fenced by the lease epoch.

Every scheduling transaction starts with `Lease.hold`, which locks the lease row
(SELECT ... FOR UPDATE; on SQLite the whole database is write-locked by BEGIN
IMMEDIATE) and checks holder and epoch. A leader that was paused past its expiry and
replaced finds a newer epoch there and stops before writing anything.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.scheduler import queries
from spinner.db.models import PartitionLease

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """This scheduler no longer holds its partition's lease."""


class Lease:
    def __init__(
        self,
        partition: str,
        holder: str,
        address: str,
        *,
        ttl: float,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.partition = partition
        self.holder = holder
        self.address = address
        self.ttl = dt.timedelta(seconds=ttl)
        self._clock = clock
        self.epoch: int | None = None

    @property
    def held(self) -> bool:
        return self.epoch is not None

    async def try_acquire(self, session: AsyncSession, bundle_version: str = "") -> bool:
        """Takes the lease when it is free or expired, renews it when ours. True when held."""
        now = self._clock()
        row = await queries.lock_lease(session, self.partition)
        if row is None:
            session.add(
                PartitionLease(
                    partition=self.partition,
                    holder=self.holder,
                    address=self.address,
                    epoch=1,
                    expires_at=now + self.ttl,
                    bundle_version=bundle_version,
                )
            )
            await session.flush()
            self._became_leader(1)
            return True
        if row.holder == self.holder and row.epoch == self.epoch and row.expires_at >= now:
            row.expires_at = now + self.ttl
            return True
        if row.expires_at < now:
            row.epoch += 1
            row.holder = self.holder
            row.address = self.address
            row.expires_at = now + self.ttl
            await session.flush()
            self._became_leader(row.epoch)
            return True
        self.epoch = None
        return False

    def _became_leader(self, epoch: int) -> None:
        self.epoch = epoch
        log.info("holding partition %s, epoch %d", self.partition, epoch)

    async def hold(self, session: AsyncSession) -> None:
        """Fences the current transaction: raises LeaseLost unless we still hold the lease."""
        if self.epoch is None:
            raise LeaseLost(f"partition {self.partition}: not the leader")
        now = self._clock()
        row = await queries.lock_lease(session, self.partition)
        # Lost only when someone else took it (a new epoch). Past its expiry but still our epoch means
        # nobody took over meanwhile: with the row locked, renewing is as safe as taking it afresh.
        if row is None or row.holder != self.holder or row.epoch != self.epoch:
            self.epoch = None
            raise LeaseLost(f"partition {self.partition}: lease lost")
        if row.expires_at < now:
            log.warning("partition %s: renewed the lease %.1f s after it expired", self.partition,
                        (now - row.expires_at).total_seconds())  # fmt: skip
        row.expires_at = now + self.ttl

    async def release(self, session: AsyncSession) -> None:
        """Gives the lease up at shutdown so a standby takes over at once."""
        row = await queries.lock_lease(session, self.partition)
        if row is not None and row.holder == self.holder and row.epoch == self.epoch:
            row.expires_at = self._clock() - dt.timedelta(seconds=1)
        self.epoch = None
