"""The scheduler's engine over a real database: runs of a DAG in a local time zone across both daylight-saving
transitions, and triggers whose conf breaks the DAG's params refused before anything is created."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler.engine.scheduling import InvalidTrigger, SchedulingEngine
from spinner import DAG, BashOperator, Param
from spinner.db.models import DagModel, DagRun, SerializedDagModel
from spinner.sdk.serialization import dag_hash, serialize_dag

from .conftest import PARTITION

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.UTC


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def add_dag(sessions: async_sessionmaker[AsyncSession], dag: DAG) -> None:
    data = serialize_dag(dag)
    async with sessions() as s, s.begin():
        s.add(
            DagModel(
                dag_id=dag.dag_id, partition=PARTITION, fileloc=f"{PARTITION}/t/{dag.dag_id}.py", tier=1,
                schedule=str(dag.schedule) if dag.schedule else None, is_paused=False, is_active=True,
            )
        )  # fmt: skip
        s.add(
            SerializedDagModel(
                dag_id=dag.dag_id, partition=PARTITION, fileloc=f"{PARTITION}/t/{dag.dag_id}.py", data=data,
                dag_hash=dag_hash(data), updated_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
            )
        )  # fmt: skip


async def scheduled_runs(sessions: async_sessionmaker[AsyncSession], dag_id: str) -> list[DagRun]:
    async with sessions() as s:
        q = select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.logical_date)
        return list((await s.execute(q)).scalars())


async def catch_up(engine: SchedulingEngine, sessions: async_sessionmaker[AsyncSession], dag_id: str) -> None:
    async with sessions() as s, s.begin():
        await engine.refresh_next_dagrun(s, [dag_id])
    for _ in range(50):  # one run per DAG per call, as the loop makes them
        async with sessions() as s, s.begin():
            if not await engine.create_scheduled_runs(s):
                return
    raise AssertionError("the scheduler kept creating runs")


@pytest.mark.parametrize(
    ("start", "now", "expected_local_starts"),
    [
        (
            dt.datetime(2026, 3, 27, 2, tzinfo=PARIS),
            dt.datetime(2026, 3, 31, 6, tzinfo=UTC),
            ["03-27 02:00", "03-28 02:00", "03-29 03:00", "03-30 02:00"],  # 02:00 does not exist on Mar 29
        ),
        (
            dt.datetime(2026, 10, 23, 2, tzinfo=PARIS),
            dt.datetime(2026, 10, 27, 6, tzinfo=UTC),
            ["10-23 02:00", "10-24 02:00", "10-25 02:00", "10-26 02:00"],
        ),
    ],
)
async def test_a_paris_dag_runs_at_two_local_across_dst(
    sessions: async_sessionmaker[AsyncSession],
    start: dt.datetime,
    now: dt.datetime,
    expected_local_starts: list[str],
) -> None:
    with DAG("paris_daily", tier=1, schedule="0 2 * * *", start_date=start, catchup=True) as dag:
        BashOperator(task_id="t", bash_command="true")
    await add_dag(sessions, dag)
    engine = SchedulingEngine(PARTITION, clock=Clock(now), heartbeat_timeout=30)
    await catch_up(engine, sessions, "paris_daily")
    runs = await scheduled_runs(sessions, "paris_daily")
    got = [f"{r.logical_date.astimezone(PARIS):%m-%d %H:%M}" for r in runs]
    assert got == expected_local_starts, [(r.run_id, r.data_interval_start, r.data_interval_end) for r in runs]
    assert all(r.data_interval_end == nxt.data_interval_start for r, nxt in itertools.pairwise(runs))
    async with sessions() as s:
        model = await s.get(DagModel, "paris_daily")
    assert model is not None and model.next_dagrun is not None
    assert f"{model.next_dagrun.astimezone(PARIS):%H:%M}" == "02:00"  # the next one is back at 02:00 local


async def test_without_catchup_only_the_latest_interval_runs(sessions: async_sessionmaker[AsyncSession]) -> None:
    with DAG("paris_latest", tier=1, schedule="0 2 * * *", start_date=dt.datetime(2026, 1, 1, 2, tzinfo=PARIS)) as dag:
        BashOperator(task_id="t", bash_command="true")
    await add_dag(sessions, dag)
    engine = SchedulingEngine(PARTITION, clock=Clock(dt.datetime(2026, 3, 29, 5, tzinfo=UTC)), heartbeat_timeout=30)
    await catch_up(engine, sessions, "paris_latest")
    runs = await scheduled_runs(sessions, "paris_latest")
    assert [(r.data_interval_start, r.data_interval_end) for r in runs] == [
        (dt.datetime(2026, 3, 28, 1, tzinfo=UTC), dt.datetime(2026, 3, 29, 1, tzinfo=UTC))
    ]


async def test_a_trigger_whose_conf_breaks_a_param_creates_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    with DAG(
        "typed", tier=1, params={"days": Param(7, type="integer", minimum=1), "email": Param(type="string")}
    ) as dag:
        BashOperator(task_id="t", bash_command="echo {{ params.days }}")
    await add_dag(sessions, dag)
    engine = SchedulingEngine(PARTITION, clock=Clock(dt.datetime(2026, 6, 1, tzinfo=UTC)), heartbeat_timeout=30)

    async def trigger(conf_json: str, run_id: str) -> DagRun:
        async with sessions() as s, s.begin():
            return await engine.trigger(
                s, dag_id="typed", conf_json=conf_json, run_id=run_id, logical_date="", triggered_by="t",
                trace_context="",
            )  # fmt: skip

    for conf, message in (
        ('{"email": "a@b.c", "days": 0}', "DAG 'typed': param 'days': 0 is less than the minimum of 1"),
        ('{"email": "a@b.c", "days": "x"}', "param 'days': 'x' is not of type 'integer'"),
        ("{}", "param 'email' is required"),
    ):
        with pytest.raises(InvalidTrigger) as e:
            await trigger(conf, "bad")
        assert message in str(e.value)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DagRun)) == 0
    run = await trigger('{"email": "a@b.c"}', "good")
    assert run.conf == {"email": "a@b.c"}  # stored as given; the defaults fill in at render time


async def test_a_backfill_whose_conf_breaks_a_param_creates_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    from services.scheduler.engine.actions import Actions

    with DAG(
        "typed_daily", tier=1, schedule="0 2 * * *", start_date=dt.datetime(2026, 1, 1, 2, tzinfo=PARIS),
        params={"days": Param(7, type="integer", minimum=1)},
    ) as dag:  # fmt: skip
        BashOperator(task_id="t", bash_command="true")
    await add_dag(sessions, dag)
    clock = Clock(dt.datetime(2026, 6, 1, tzinfo=UTC))
    actions = Actions(PARTITION, SchedulingEngine(PARTITION, clock=clock, heartbeat_timeout=30), clock)
    async with sessions() as s, s.begin():
        with pytest.raises(InvalidTrigger, match="param 'days': -1 is less than the minimum of 1"):
            await actions.backfill(s, "typed_daily", "2026-03-27", "2026-03-31", '{"days": -1}', "t")
    async with sessions() as s, s.begin():
        created, _ = await actions.backfill(s, "typed_daily", "2026-03-27", "2026-03-30", '{"days": 2}', "t")
    # Backfill intervals are Paris days too: 02:00 local, 03:00 on the spring-forward day.
    assert [r.logical_date.astimezone(PARIS).strftime("%d %H:%M") for r in await scheduled_runs(sessions, "typed_daily")] == [
        "27 02:00", "28 02:00", "29 03:00", "30 02:00",
    ]  # fmt: skip
    assert len(created) == 4
