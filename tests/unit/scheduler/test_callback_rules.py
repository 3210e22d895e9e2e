"""What the scheduler records when a run ends or passes its deadline (it never runs DAG code)."""

from __future__ import annotations

import datetime as dt

from services.scheduler.engine.callbacks import DeadlineDefaults, _rule, deadline_of, run_end_callbacks
from services.scheduler.engine.scheduling import CachedDag
from spinner import DAG, Deadline, PythonOperator, Tier
from spinner.db.models import DagRun
from spinner.sdk.serialization import deserialize_dag, serialize_dag

NOW = dt.datetime(2026, 1, 2, 12, tzinfo=dt.UTC)


def cached(dag: DAG) -> CachedDag:
    return CachedDag("h", deserialize_dag(serialize_dag(dag)), "team/d.py", tuple(dag.task_ids), ())


def make(**kwargs: object) -> CachedDag:
    with DAG("d", tier=Tier.TIER2, **kwargs) as dag:  # type: ignore[arg-type]
        PythonOperator(task_id="t", python_callable=print)
    return cached(dag)


def run(state: str = "failed") -> DagRun:
    return DagRun(
        dag_id="d", run_id="r", state=state, bundle_version="v1",
        data_interval_end=NOW - dt.timedelta(hours=3), created_at=NOW - dt.timedelta(hours=1),
    )  # fmt: skip


def test_a_run_end_records_the_declared_callback_only() -> None:
    with_failure = make(on_failure_callback=print)
    [row] = run_end_callbacks(run("failed"), with_failure, "spinner_tier_2_0", NOW, "task_failure")
    assert (row.kind, row.state, row.bundle_version, row.fileloc, row.details) == (
        "on_failure_callback", "pending", "v1", "team/d.py", {"reason": "task_failure"},
    )  # fmt: skip
    assert run_end_callbacks(run("success"), with_failure, "p", NOW, "success") == []
    assert run_end_callbacks(run("failed"), make(), "p", NOW, "task_failure") == []
    assert run_end_callbacks(run("failed"), None, "p", NOW, "gone") == []


def test_declared_deadline_wins_over_the_tier_default() -> None:
    defaults = DeadlineDefaults({2: 600.0}, "queued_at", ("ops@x.io",))
    declared = make(deadline=Deadline(after=dt.timedelta(hours=2), reference="logical_date"))
    rule = _rule(declared, defaults)
    assert rule is not None and rule.declared and rule.reference == "logical_date"
    assert deadline_of(run(), rule) == NOW - dt.timedelta(hours=1)
    default = _rule(make(), defaults)
    assert default is not None and not default.declared and default.after == dt.timedelta(minutes=10)
    assert deadline_of(run(), default) == NOW - dt.timedelta(minutes=50)
    assert _rule(make(), DeadlineDefaults({})) is None  # off by default
    assert _rule(make(), DeadlineDefaults({1: 60.0})) is None  # another tier's default
