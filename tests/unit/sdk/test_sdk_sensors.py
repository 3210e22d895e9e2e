"""Sensors as the runner runs them: poke and reschedule modes, backoff, timeouts, and each sensor's poke.

The clock and sleep are the sensors' injected edges; HTTP and S3 are real local servers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spinner import (
    DAG,
    BaseSensorOperator,
    DateTimeSensor,
    FileSensor,
    HttpSensor,
    PythonSensor,
    S3KeySensor,
    TimeDeltaSensor,
)
from spinner.sdk.exceptions import DagDefinitionError, FailNoRetry, RescheduleTask, SkipTask
from spinner.sdk.operators.sensors import ExternalTaskSensor, SensorTry
from spinner.sdk.templating import build_context
from tests.fakes.s3 import Moto

WHEN = dt.datetime(2026, 5, 17, 6, 30, tzinfo=dt.UTC)


class FakeTime:
    """A clock that moves only when the sensor sleeps."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


class Countdown(BaseSensorOperator):
    """True on the n-th poke."""

    def __init__(self, task_id: str, after: int, **kwargs: Any) -> None:
        super().__init__(task_id, **kwargs)
        self.after = after
        self.pokes = 0

    def poke(self, context: dict[str, Any]) -> bool:
        self.pokes += 1
        return self.pokes >= self.after


def context_for(dag: DAG, task: Any, sensor_try: SensorTry | None = None) -> dict[str, Any]:
    ctx = build_context(
        dag, task, run_id="manual__x", logical_date=WHEN, data_interval_start=WHEN - dt.timedelta(days=1),
        data_interval_end=WHEN, conf={}, try_number=1, run_type="manual",
    )  # fmt: skip
    if sensor_try is not None:
        ctx["sensor_try"] = sensor_try
    return ctx


def timed(sensor: BaseSensorOperator, now: dt.datetime = WHEN) -> FakeTime:
    fake = FakeTime(now)
    sensor.clock, sensor.sleep = fake.clock, fake.sleep
    return fake


def test_poke_mode_loops_in_the_process_until_the_condition_holds() -> None:
    with DAG("s", tier=1) as dag:
        sensor = Countdown("c", after=3, poke_interval=5)
    fake = timed(sensor)
    assert sensor.execute(context_for(dag, sensor)) is None
    assert sensor.pokes == 3
    assert fake.sleeps == [5.0, 5.0]


def test_exponential_backoff_doubles_up_to_max_wait() -> None:
    with DAG("s", tier=1) as dag:
        sensor = Countdown("c", after=6, poke_interval=2, exponential_backoff=True, max_wait=10)
    fake = timed(sensor)
    sensor.execute(context_for(dag, sensor))
    assert fake.sleeps == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_reschedule_mode_ends_the_process_with_the_next_poke_time() -> None:
    with DAG("s", tier=1) as dag:
        sensor = Countdown("c", after=99, poke_interval=30, mode="reschedule")
    fake = timed(sensor)
    with pytest.raises(RescheduleTask) as raised:
        sensor.execute(context_for(dag, sensor))
    assert raised.value.reschedule_at == WHEN + dt.timedelta(seconds=30)
    assert fake.sleeps == [] and sensor.pokes == 1


def test_reschedule_backoff_counts_the_pokes_of_earlier_processes() -> None:
    with DAG("s", tier=1) as dag:
        sensor = Countdown("c", after=99, poke_interval=10, mode="reschedule", exponential_backoff=True)
    timed(sensor)
    with pytest.raises(RescheduleTask) as raised:
        sensor.execute(context_for(dag, sensor, SensorTry(reschedules=3, first_poke_at=WHEN)))
    assert raised.value.reschedule_at == WHEN + dt.timedelta(seconds=80)  # the 4th poke: 10 * 2**3


def test_timeout_counts_from_the_first_poke_across_reschedules() -> None:
    with DAG("s", tier=1) as dag:
        sensor = Countdown("c", after=99, poke_interval=60, timeout=300, mode="reschedule", retries=3)
    timed(sensor, now=WHEN + dt.timedelta(seconds=280))
    with pytest.raises(RescheduleTask) as raised:  # the last poke is at the deadline, not after it
        sensor.execute(context_for(dag, sensor, SensorTry(reschedules=4, first_poke_at=WHEN)))
    assert raised.value.reschedule_at == WHEN + dt.timedelta(seconds=300)
    timed(sensor, now=WHEN + dt.timedelta(seconds=300))
    with pytest.raises(FailNoRetry, match=r"Sensor c timed out: .* timeout of 300 s \(waited 300 s"):
        sensor.execute(context_for(dag, sensor, SensorTry(reschedules=5, first_poke_at=WHEN)))


def test_poke_mode_timeout_fails_and_soft_fail_skips() -> None:
    with DAG("s", tier=1) as dag:
        hard = Countdown("hard", after=99, poke_interval=1, timeout=3)
        soft = Countdown("soft", after=99, poke_interval=1, timeout=3, soft_fail=True)
    timed(hard)
    with pytest.raises(FailNoRetry, match="timed out"):
        hard.execute(context_for(dag, hard))
    assert hard.pokes == 4  # at 0, 1, 2 and 3 s
    timed(soft)
    with pytest.raises(SkipTask, match="soft_fail"):
        soft.execute(context_for(dag, soft))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "sometimes"}, "mode must be 'poke' or 'reschedule'"),
        ({"timeout": 0}, "timeout must be more than zero"),
        ({"poke_interval": -1}, "poke_interval must not be negative"),
        ({"poke_interval": "soon"}, "poke_interval must be a timedelta or seconds"),
        ({"poke_interval": 10, "max_wait": 5}, "max_wait"),
    ],
)
def test_bad_sensor_arguments_are_definition_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DagDefinitionError, match=f"DAG 'bad', task 'c': {message}"), DAG("bad", tier=1):
        Countdown("c", after=1, **kwargs)


def test_default_args_reach_sensor_parameters() -> None:
    with DAG("s", tier=1, default_args={"mode": "reschedule", "poke_interval": 7}) as dag:
        sensor = Countdown("c", after=1)
    assert (sensor.mode, sensor.poke_interval) == ("reschedule", 7.0)
    assert dag.get_task("c") is sensor


def test_time_delta_sensor_waits_for_the_interval_end_plus_delta_and_reschedules_straight_there() -> None:
    with DAG("s", tier=1) as dag:
        sensor = TimeDeltaSensor(task_id="t", delta=dt.timedelta(hours=1), mode="reschedule", poke_interval=60)
    timed(sensor, now=WHEN + dt.timedelta(minutes=10))
    with pytest.raises(RescheduleTask) as raised:
        sensor.execute(context_for(dag, sensor))
    assert raised.value.reschedule_at == WHEN + dt.timedelta(hours=1)
    timed(sensor, now=WHEN + dt.timedelta(hours=1))
    assert sensor.execute(context_for(dag, sensor)) is None


def test_date_time_sensor_renders_its_target_and_treats_naive_times_as_utc() -> None:
    with DAG("s", tier=1) as dag:
        sensor = DateTimeSensor(task_id="t", target_time="{{ ds }}T08:00:00")
    ctx = context_for(dag, sensor)
    sensor.render_template_fields(ctx)
    assert sensor.target() == dt.datetime(2026, 5, 17, 8, 0, tzinfo=dt.UTC)
    timed(sensor, now=dt.datetime(2026, 5, 17, 7, 59, tzinfo=dt.UTC))
    assert not sensor.poke(ctx)
    timed(sensor, now=dt.datetime(2026, 5, 17, 8, 0, tzinfo=dt.UTC))
    assert sensor.poke(ctx)
    with pytest.raises(DagDefinitionError, match="target_time must be"), DAG("bad", tier=1):
        DateTimeSensor(task_id="t", target_time=5)  # type: ignore[arg-type]


def test_python_sensor_passes_the_context_values_its_callable_names() -> None:
    seen: list[str] = []

    def ready(ds: str, threshold: int) -> bool:
        seen.append(ds)
        return threshold > 2

    with DAG("s", tier=1) as dag:
        yes = PythonSensor(task_id="yes", python_callable=ready, op_kwargs={"threshold": 3})
        no = PythonSensor(task_id="no", python_callable=ready, op_kwargs={"threshold": 1})
    assert yes.poke(context_for(dag, yes)) and not no.poke(context_for(dag, no))
    assert seen == ["2026-05-17", "2026-05-17"]
    with pytest.raises(DagDefinitionError, match="python_callable must be callable"), DAG("bad", tier=1):
        PythonSensor(task_id="t", python_callable="nope")  # type: ignore[arg-type]


def test_file_sensor_finds_a_path_or_a_glob(tmp_path: Path) -> None:
    with DAG("s", tier=1) as dag:
        exact = FileSensor(task_id="exact", filepath=str(tmp_path / "in" / "{{ ds_nodash }}.csv"))
        pattern = FileSensor(task_id="glob", filepath=str(tmp_path / "in" / "**" / "*.done"), recursive=True)
        folder = FileSensor(task_id="folder", filepath=str(tmp_path / "drop"))
    for s in (exact, pattern, folder):
        s.render_template_fields(context_for(dag, s))
    assert not exact.poke({}) and not pattern.poke({}) and not folder.poke({})
    (tmp_path / "in" / "deep").mkdir(parents=True)
    (tmp_path / "drop").mkdir()
    assert not folder.poke({})  # an empty folder is not there yet
    (tmp_path / "in" / "20260517.csv").write_text("a,b\n")
    (tmp_path / "in" / "deep" / "x.done").touch()
    (tmp_path / "drop" / "file").touch()
    assert exact.poke({}) and pattern.poke({}) and folder.poke({})


class _Handler(http.server.BaseHTTPRequestHandler):
    ready = False

    def do_GET(self) -> None:
        if self.path.startswith("/status"):
            body = b'{"state": "done"}' if _Handler.ready else b'{"state": "working"}'
            self.send_response(200)
        else:
            body = b"missing"
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        _Handler.ready = False


def test_http_sensor_against_a_real_server(http_server: str) -> None:
    with DAG("s", tier=1) as dag:
        done = HttpSensor(
            task_id="done", base_url=http_server, endpoint="status/{{ ds }}",
            response_check=lambda response: response.json()["state"] == "done",
        )  # fmt: skip
        plain = HttpSensor(task_id="plain", endpoint=f"{http_server}/status")
        missing = HttpSensor(task_id="missing", endpoint=f"{http_server}/nothing")
        down = HttpSensor(task_id="down", endpoint="http://127.0.0.1:9/", request_timeout=2)
    ctx = context_for(dag, done)
    done.render_template_fields(ctx)
    assert done.url() == f"{http_server}/status/2026-05-17"
    assert not done.poke(ctx)
    _Handler.ready = True
    assert done.poke(ctx)
    assert plain.poke(ctx)
    assert not missing.poke(ctx)  # 404: not yet
    assert not down.poke(ctx)  # nobody listens: not yet
    with pytest.raises(DagDefinitionError, match="is not an http"), DAG("bad", tier=1):
        HttpSensor(task_id="t", endpoint="status")


def test_s3_key_sensor_against_moto(moto: Moto) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="partner")
    with DAG("s", tier=1) as dag:
        url = S3KeySensor(task_id="url", bucket_key="s3://partner/in/{{ ds }}/orders.csv", endpoint_url=moto.endpoint,
                          region_name="us-east-1")  # fmt: skip
        named = S3KeySensor(task_id="named", bucket_name="partner", bucket_key=["in/a.csv", "in/b.csv"],
                            endpoint_url=moto.endpoint, region_name="us-east-1")  # fmt: skip
        wild = S3KeySensor(task_id="wild", bucket_key="s3://partner/in/2026-*/*.csv", wildcard_match=True,
                           endpoint_url=moto.endpoint, region_name="us-east-1")  # fmt: skip
    ctx = context_for(dag, url)
    url.render_template_fields(ctx)
    assert not url.poke(ctx) and not named.poke(ctx) and not wild.poke(ctx)
    s3.put_object(Bucket="partner", Key="in/2026-05-17/orders.csv", Body=b"1")
    s3.put_object(Bucket="partner", Key="in/a.csv", Body=b"1")
    assert url.poke(ctx) and wild.poke(ctx)
    assert not named.poke(ctx)  # every key must exist
    s3.put_object(Bucket="partner", Key="in/b.csv", Body=b"1")
    assert named.poke(ctx)
    assert not asyncio.run(S3KeySensor(task_id="x", bucket_key="s3://partner/none", endpoint_url=moto.endpoint,
                                       region_name="us-east-1").apoke())  # fmt: skip


def test_s3_key_sensor_argument_errors() -> None:
    with pytest.raises(DagDefinitionError, match="bucket_name is required"), DAG("bad", tier=1):
        S3KeySensor(task_id="t", bucket_key="in/a.csv")
    with pytest.raises(DagDefinitionError, match="do not give bucket_name too"), DAG("bad", tier=1):
        S3KeySensor(task_id="t", bucket_key="s3://b/k", bucket_name="b")


def test_external_task_sensor_dates_and_argument_errors() -> None:
    with DAG("s", tier=1) as dag:
        delta = ExternalTaskSensor(task_id="d", external_dag_id="up", execution_delta=dt.timedelta(hours=6))
        fn = ExternalTaskSensor(task_id="f", external_dag_id="up", execution_date_fn=lambda d: d.replace(hour=0))
        same = ExternalTaskSensor(task_id="s", external_dag_id="up", external_task_id="t")
    ctx = context_for(dag, delta)
    assert delta.external_logical_date(ctx) == WHEN - dt.timedelta(hours=6)
    assert fn.external_logical_date(ctx) == WHEN.replace(hour=0)
    assert same.external_logical_date(ctx) == WHEN
    with pytest.raises(DagDefinitionError, match="not both"), DAG("bad", tier=1):
        ExternalTaskSensor(task_id="t", external_dag_id="up", execution_delta=dt.timedelta(1),
                           execution_date_fn=lambda d: d)  # fmt: skip
    with pytest.raises(DagDefinitionError, match="both allowed and failed"), DAG("bad", tier=1):
        ExternalTaskSensor(task_id="t", external_dag_id="up", failed_states=["success"])


def test_only_time_sensors_in_reschedule_mode_are_serialized_for_the_scheduler_to_decide() -> None:
    from spinner.sdk.serialization import deserialize_dag, serialize_dag

    at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with DAG("s", tier=1) as dag:
        TimeDeltaSensor(task_id="delta", delta=dt.timedelta(hours=2), mode="reschedule", timeout=600, soft_fail=True)
        DateTimeSensor(task_id="at", target_time=at, mode="reschedule")
        DateTimeSensor(task_id="templated", target_time="{{ ds }}T08:00:00", mode="reschedule")
        TimeDeltaSensor(task_id="poking", delta=dt.timedelta(hours=2))
        PythonSensor(task_id="python", python_callable=lambda: True, mode="reschedule")
    data = serialize_dag(dag)
    waits = {t["task_id"]: t.get("timed_wait") for t in data["tasks"]}
    assert waits == {
        "delta": {"after_interval_end": 7200.0, "timeout": 600.0, "soft_fail": True},
        "at": {"at": at.isoformat(), "timeout": 604800.0, "soft_fail": False},
        "templated": None, "poking": None, "python": None,
    }  # fmt: skip
    assert serialize_dag(deserialize_dag(data)) == data
    with DAG("plain", tier=1) as plain:
        PythonSensor(task_id="p", python_callable=lambda: True)
    assert all("timed_wait" not in t for t in serialize_dag(plain)["tasks"])  # other DAGs' hashes unchanged
