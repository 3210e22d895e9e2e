"""The scheduler's decisions on time sensors in reschedule mode (services/scheduler/engine/sensors.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.scheduler.engine.sensors import sensor_poke_due, timed_step
from services.scheduler.engine.ti_state import TiRow
from spinner import DAG, DateTimeSensor, TimeDeltaSensor
from spinner.db.models import DagRun
from spinner.sdk.serialization import SerializedTask, deserialize_dag, serialize_dag

END = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)


def task(sensor_cls: Any, **kwargs: Any) -> SerializedTask:
    with DAG("d", tier=1) as dag:
        sensor_cls(task_id="s", mode="reschedule", **kwargs)
    return deserialize_dag(serialize_dag(dag)).tasks["s"]


def run() -> DagRun:
    return DagRun(dag_id="d", run_id="r", logical_date=END - dt.timedelta(days=1), data_interval_end=END)


def row(state: str | None, reschedule_at: dt.datetime | None = None) -> TiRow:
    return TiRow("d", "r", "s", state, 0, 0, None, "default_pool", reschedule_at)


def test_a_time_sensor_waits_for_its_target_then_succeeds_without_a_try() -> None:
    t = task(TimeDeltaSensor, delta=dt.timedelta(hours=1), timeout=7200)
    now = END + dt.timedelta(minutes=10)
    step = timed_step(t, run(), row(None), None, now)
    assert step is not None and (step.state, step.ended) == ("up_for_reschedule", False)
    assert step.values == {"reschedule_at": END + dt.timedelta(hours=1), "first_poke_at": now}
    waiting = row("up_for_reschedule", step.values["reschedule_at"])
    assert not sensor_poke_due(waiting, END + dt.timedelta(minutes=59))
    early = timed_step(t, run(), waiting, "up_for_reschedule", END + dt.timedelta(minutes=59))
    assert early is not None and early.state == "up_for_reschedule" and not early.values
    done = timed_step(t, run(), waiting, "up_for_reschedule", END + dt.timedelta(hours=1))
    assert done is not None and (done.state, done.ended) == ("success", True)


def test_a_target_already_passed_succeeds_at_once() -> None:
    t = task(DateTimeSensor, target_time=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    step = timed_step(t, run(), row(None), None, END)
    assert step is not None and (step.state, step.ended) == ("success", True)


def test_the_timeout_comes_first_fails_or_skips_with_soft_fail() -> None:
    for soft, state in ((False, "failed"), (True, "skipped")):
        t = task(DateTimeSensor, target_time=dt.datetime(2999, 1, 1, tzinfo=dt.UTC), timeout=60, soft_fail=soft)
        step = timed_step(t, run(), row(None), None, END)
        assert step is not None and step.values["reschedule_at"] == END + dt.timedelta(seconds=60)
        waiting = row("up_for_reschedule", step.values["reschedule_at"])
        ended = timed_step(t, run(), waiting, "up_for_reschedule", END + dt.timedelta(seconds=60))
        assert ended is not None and (ended.state, ended.ended) == (state, True)
        assert "timed out" in ended.values["error"] and "timeout of 60 s" in ended.values["error"]
        assert ("soft_fail" in ended.values["error"]) is soft


def test_other_tasks_and_poke_mode_sensors_are_not_the_schedulers_to_decide() -> None:
    with DAG("d", tier=1) as dag:
        TimeDeltaSensor(task_id="poke", delta=dt.timedelta(hours=1))
        DateTimeSensor(task_id="templated", target_time="{{ ds }}T01:00:00", mode="reschedule")
    tasks = deserialize_dag(serialize_dag(dag)).tasks
    assert timed_step(tasks["poke"], run(), row(None), None, END) is None
    assert timed_step(tasks["templated"], run(), row(None), None, END) is None
    assert sensor_poke_due(row("up_for_reschedule", None), END)  # no time known: due
