"""Partition leases: one scheduler writes for a partition at a time, fenced by the lease epoch.

Every scheduling transaction starts with `Lease.hold`, which locks the lease row
(SELECT ... FOR UPDATE; on SQLite the whole database is write-locked by BEGIN
IMMEDIATE) and checks holder and epoch. A leader that was paused past its expiry and
replaced finds a newer epoch there and stops before writing anything.

Taking a lease over is quick: a standby's attempt never waits on the row (NOWAIT: a leader
frozen inside a transaction makes it try again next poll, not hang), the expiry is judged on a
clock read after the row is locked, and a holder on this machine whose process is gone (kill -9),
or stopped and no longer renewing (SIGSTOP), is taken over at once instead of at its expiry. The
holder names its process (`holder_name`), so any scheduler on the same machine can tell. Safety
never rests on this: the epoch fences whoever held the lease before.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from services.scheduler import queries
from spinner.db.errors import is_lock_busy
from spinner.db.models import PartitionLease
from spinner.processes import is_alive, is_stopped, process_tag

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """This scheduler no longer holds its partition's lease."""


# A holder on this machine that is stopped and has not renewed for this long is not coming back soon.
STOPPED_STALE = dt.timedelta(seconds=2)


def holder_name(hostname: str, pid: int, instance: str) -> str:
    """`host:pid:instance:tag`; the tag (spinner.processes.process_tag) says whose pids these are."""
    return f"{hostname}:{pid}:{instance}:{process_tag()}"


def _holder_process(holder: str) -> int | None:
    """The pid of a holder that runs where this process can see it; None for any other holder."""
    parts = holder.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        return None  # another form (an older scheduler): judged by its expiry alone
    tag = process_tag()
    return int(parts[1]) if tag and parts[3] == tag else None


def gone_holder(row: PartitionLease, now: dt.datetime, ttl: dt.timedelta) -> str:
    """Why the row's holder will not renew its lease (its process is gone, or stopped and stale);
    empty when it may, or when this process cannot tell (another machine)."""
    pid = _holder_process(row.holder)
    if pid is None or pid == os.getpid():
        return ""
    if not is_alive(pid):
        return f"its process {pid} is gone"
    if is_stopped(pid) and row.expires_at - ttl + STOPPED_STALE < now:
        return f"its process {pid} is stopped"
    return ""


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
        """Takes the lease when it is free, expired or its holder is gone; renews it when ours. True
        when held; False also when another transaction holds the row now (the next poll tries again)."""
        try:
            row = await queries.lock_lease(session, self.partition, nowait=True)
        except DBAPIError as e:
            if is_lock_busy(e):
                return False
            raise
        now = self._clock()  # after the lock: the wait for it must not make an expired lease look current
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
        gone = "" if row.expires_at < now else gone_holder(row, now, self.ttl)
        if row.expires_at < now or gone:
            if gone:
                log.warning("partition %s: taking the lease from %s before it expires: %s", self.partition,
                            row.holder, gone)  # fmt: skip
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
        row = await queries.lock_lease(session, self.partition)
        now = self._clock()
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
