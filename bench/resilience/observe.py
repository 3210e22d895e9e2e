"""What the suite reads from the database while a scenario runs: progress, the partition's lease and
the newest queued try, sampled a few times a second by one loop. The database may be down (that is
one of the faults): a sample that fails is skipped, never fatal."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bench.resilience.workload import DAG_ID, PARTITION
from spinner.db.models import DagRun, PartitionLease, TaskInstance

log = logging.getLogger(__name__)
ENDED_RUN = ("success", "failed")


@dataclass
class Sample:
    at: float  # time.time()
    done: int  # task instances in success
    runs_ended: int
    holder: str | None
    epoch: int | None
    last_queued: float | None  # the newest queued_at in the partition, as time.time()


@dataclass
class Observer:
    engine: AsyncEngine
    clock: Callable[[], float]
    interval: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    failed_reads: int = 0

    async def read(self) -> Sample:
        sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        async with sessions() as s:
            done = (
                await s.execute(
                    select(func.count())
                    .select_from(TaskInstance)
                    .where(TaskInstance.dag_id == DAG_ID, TaskInstance.state == "success")
                )
            ).scalar_one()
            runs_ended = (
                await s.execute(
                    select(func.count()).select_from(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.state.in_(ENDED_RUN))
                )
            ).scalar_one()
            lease = (await s.execute(select(PartitionLease).where(PartitionLease.partition == PARTITION))).scalar()
            queued = (
                await s.execute(select(func.max(TaskInstance.queued_at)).where(TaskInstance.partition == PARTITION))
            ).scalar()
        return Sample(
            at=self.clock(),
            done=int(done),
            runs_ended=int(runs_ended),
            holder=lease.holder if lease else None,
            epoch=int(lease.epoch) if lease else None,
            last_queued=_epoch(queued),
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.samples.append(await asyncio.wait_for(self.read(), timeout=5))
            except (DBAPIError, OperationalError, OSError, TimeoutError):
                self.failed_reads += 1  # the database is away (a fault): the next sample will tell
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass

    @property
    def last(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    async def wait(self, condition: Callable[[Sample], bool], within: float) -> Sample | None:
        """The first new sample that meets `condition`; None after `within` seconds."""
        seen = len(self.samples)
        deadline = self.clock() + within
        while self.clock() < deadline:
            for sample in self.samples[seen:]:
                if condition(sample):
                    return sample
            seen = len(self.samples)
            await asyncio.sleep(self.interval / 2)
        return None

    def takeover_after(self, since: float, holder: str | None, epoch: int | None) -> Sample | None:
        """The first sample after `since` where someone else holds the lease (a newer epoch)."""
        for sample in self.samples:
            if sample.at >= since and sample.epoch is not None and sample.holder != holder:
                if epoch is None or sample.epoch > epoch:
                    return sample
        return None

    def first_queue_after(self, since: float) -> float | None:
        """The queued_at of the first try queued after `since` (as seen by the samples)."""
        for sample in self.samples:
            if sample.at >= since and sample.last_queued is not None and sample.last_queued > since:
                return sample.last_queued
        return None


def _epoch(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()
