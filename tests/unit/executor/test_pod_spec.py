"""Pod names, labels and manifests, and the executor_config the platform refuses before any API call."""

from __future__ import annotations

import re

import pytest

from services.executor.backends.base import TryKey
from services.executor.pod_spec import (
    PodSettings,
    PodSpecError,
    build_pod,
    key_of,
    label_value,
)
from spinner.kube import pod_name
from spinner.podpolicy import PodPolicy, parse_quantity

DNS1123 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
SETTINGS = PodSettings(
    namespace="tasks", executor_name="exec-a", policy=PodPolicy(image="spinner:1", max_memory="8Gi", max_cpu="4")
)


def build(config: dict, key: TryKey | None = None) -> dict:
    key = key or TryKey("ads.hourly_spend", "scheduled__2026-11-24T10:00:00+00:00", "load_to_warehouse", 2)
    return build_pod(key, partition="spinner_tier_2_0", argv=["python", "-m", "spinner.runner", "--x"],
                     env={"SPINNER_RUNNER_TOKEN": "t"}, config=config, settings=SETTINGS)  # fmt: skip


@pytest.mark.parametrize(
    "key",
    [
        TryKey("tutorial", "manual__2026-11-24T10:45:05.947366+00:00", "templated", 1),
        TryKey("A" * 250, "R" * 250, "T" * 250, 12),
        TryKey("__weird__", "--", "Ünïcode task", 1),
        TryKey("1starts_with_digit", "r", "t", 3),
    ],
)
def test_pod_names_are_legal_readable_and_stable(key: TryKey) -> None:
    name = pod_name(key)
    assert len(name) <= 63 and DNS1123.match(name), name
    assert name == pod_name(TryKey(key.dag_id, key.run_id, key.task_id, key.try_number))  # every attempt
    assert pod_name(TryKey(key.dag_id, key.run_id, key.task_id, key.try_number + 1)) != name  # each try its pod


def test_pod_name_reads_like_the_try_and_tries_that_shorten_alike_differ() -> None:
    name = pod_name(TryKey("tutorial", "manual__2026-11-24T10:45:05+00:00", "templated", 1))
    assert name.startswith("tutorial-templated-manual-2026-11-24t10-45-05")
    a = pod_name(TryKey("d" * 80, "run", "t", 1))
    b = pod_name(TryKey("d" * 81, "run", "t", 1))
    assert a != b and a[:-8] == b[:-8]  # same readable part, the hash tells them apart


def test_labels_are_legal_and_annotations_keep_the_exact_key() -> None:
    key = TryKey("ads.hourly_spend", "manual__2026-11-24T10:45:05.947366+00:00", "t" * 100, 2)
    pod = build({}, key)
    labels = pod["metadata"]["labels"]
    assert labels["spinner.io/partition"] == "spinner_tier_2_0" and labels["spinner.io/executor"] == "exec-a"
    assert labels["spinner.io/try-number"] == "2" and labels["spinner.io/dag-id"] == "ads.hourly_spend"
    assert all(len(v) <= 63 and LABEL.match(v) for v in labels.values()), labels
    assert key_of(pod) == key
    assert label_value("+00:00") == "00_00"


def test_manifest_carries_settings_resources_env_and_command() -> None:
    pod = build({"request_memory": "1Gi", "limit_memory": "2Gi", "request_cpu": "500m", "limit_cpu": "1",
                 "env": {"REGION": "us-east-1", "SPINNER_RUNNER_TOKEN": "stolen"}, "requirements": "reqs/ads.txt"})  # fmt: skip
    assert pod["metadata"]["namespace"] == "tasks"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["serviceAccountName"] == "spinner-task"
    c = spec["containers"][0]
    assert c["image"] == "spinner:1" and c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == ["python"] and c["args"] == ["-m", "spinner.runner", "--x"]
    assert c["resources"] == {"requests": {"memory": "1Gi", "cpu": "500m"}, "limits": {"memory": "2Gi", "cpu": "1"}}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["REGION"] == "us-east-1" and env["SPINNER_REQUIREMENTS"] == "reqs/ads.txt"
    assert env["SPINNER_RUNNER_TOKEN"] == "t"  # a DAG cannot replace the platform's own variables


def test_pod_override_adds_scheduling_volumes_labels_and_annotations() -> None:
    pod = build({"pod_override": {
        "metadata": {"labels": {"team": "ads"}, "annotations": {"cost-center": "42"}},
        "spec": {
            "nodeSelector": {"node.kubernetes.io/instance-type": "m5.4xlarge"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [{"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
        },
    }})  # fmt: skip
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"node.kubernetes.io/instance-type": "m5.4xlarge"}
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert spec["containers"][0]["volumeMounts"][0]["mountPath"] == "/scratch"
    assert spec["containers"][0]["image"] == "spinner:1"  # the override merged, it did not replace
    assert pod["metadata"]["labels"]["team"] == "ads" and pod["metadata"]["labels"]["spinner.io/task-id"]
    assert pod["metadata"]["annotations"]["cost-center"] == "42"
    assert pod["metadata"]["annotations"]["spinner.io/try-number"] == "2"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"limit_memory": "64Gi"}, "limit_memory=64Gi is over the platform's maximum of 8Gi"),
        ({"request_cpu": "16"}, "request_cpu=16 is over the platform's maximum of 4"),
        ({"request_memory": "2Gi", "limit_memory": "1Gi"}, "limit_memory=1Gi is below request_memory=2Gi"),
        ({"request_memory": "lots"}, "is not a Kubernetes quantity"),
        ({"request_cpu": "0"}, "must be more than zero"),
        ({"pod_override": {"spec": {"hostNetwork": True}}}, "pod_override spec.hostNetwork is not allowed"),
        ({"pod_override": {"spec": {"serviceAccountName": "admin"}}}, "spec.serviceAccountName is not allowed"),
        (
            {"pod_override": {"spec": {"containers": [{"securityContext": {"privileged": True}}]}}},
            "spec.containers[0].securityContext.privileged is not allowed",
        ),
        ({"pod_override": {"spec": {"containers": [{"image": "evil"}]}}}, "'evil' is not an allowed image"),
        ({"pod_override": {"spec": {"whatever": 1}}}, "spec.whatever is not allowed"),
        (
            {"pod_override": {"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}},
            "executor_config pod_override spec.volumes[0].hostPath is not allowed",
        ),
        ({"requirements": "../../etc/passwd"}, "inside the DAG folder"),
    ],
)
def test_refused_executor_config_says_why(config: dict, message: str) -> None:
    with pytest.raises(PodSpecError, match=re.escape(message)):
        build(config)


def test_quantities() -> None:
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity("500m") * 1000 == 500
    assert parse_quantity("2") == 2 and parse_quantity("1.5G") == 1_500_000_000


@pytest.mark.parametrize(
    "key",
    [
        TryKey("tutorial", "manual__2026-11-24T10:45:05+00:00", "wait_for_file", 1),
        TryKey("A" * 250, "R" * 250, "T" * 250, 12),
    ],
)
def test_each_poke_of_a_rescheduled_sensor_has_its_own_stable_pod(key: TryKey) -> None:
    """docs/adr/0006-sensor-reschedule.md: a try's n-th reschedule is a pod of its own, named the same on every Submit."""
    first = pod_name(key)
    pokes = [pod_name(TryKey(key.dag_id, key.run_id, key.task_id, key.try_number, n)) for n in range(1, 4)]
    assert len({first, *pokes}) == 4
    assert all(len(n) <= 63 and DNS1123.match(n) for n in pokes), pokes
    assert pokes[1] == pod_name(TryKey(key.dag_id, key.run_id, key.task_id, key.try_number, 2))
    assert first == pod_name(TryKey(key.dag_id, key.run_id, key.task_id, key.try_number, 0))  # unchanged for others
    poke = TryKey(key.dag_id, key.run_id, key.task_id, key.try_number, 2)
    assert key_of(build({}, poke)) == poke
    assert "spinner.io/reschedule" not in build({}, key)["metadata"]["annotations"]


# --- instances of a mapped task (docs/adr/0007-dynamic-task-mapping.md) ---------------------------


def test_an_unmapped_trys_pod_name_is_what_it_always_was() -> None:
    # Names computed before map_index existed: pods of running tries keep matching after an upgrade.
    assert (
        pod_name(TryKey("tutorial", "manual__2026-11-24T10:45:05+00:00", "templated", 1))
        == "tutorial-templated-manual-2026-11-24t10-45-05-00-00-1-5d7086bf"
    )
    assert pod_name(TryKey("sensors", "r", "wait", 2, 3)) == "sensors-wait-r-2r3-fdd851a8"
    assert pod_name(TryKey("sensors", "r", "wait", 2, 3, map_index=-1)) == "sensors-wait-r-2r3-fdd851a8"


@pytest.mark.parametrize(
    "key",
    [
        TryKey("tutorial", "manual__2026-11-24T10:45:05.947366+00:00", "templated", 1, map_index=0),
        TryKey("A" * 250, "R" * 250, "T" * 250, 12, 7, map_index=1023),
        TryKey("1starts_with_digit", "r", "t", 3, map_index=99999),
    ],
)
def test_each_instance_of_a_mapped_task_has_its_own_legal_pod_name(key: TryKey) -> None:
    name = pod_name(key)
    assert len(name) <= 63 and DNS1123.match(name), name
    assert f"-m{key.map_index}-" in name  # readable: which instance
    assert name == pod_name(key)  # stable: creating it twice is harmless
    others = {pod_name(TryKey(key.dag_id, key.run_id, key.task_id, key.try_number, key.reschedule, map_index=i))
              for i in (-1, key.map_index + 1, key.map_index + 10)}  # fmt: skip
    assert name not in others and len(others) == 3


def test_an_instances_labels_and_annotations_carry_its_map_index_back() -> None:
    key = TryKey("etl", "manual__1", "load", 2, map_index=3)
    pod = build({}, key)
    assert pod["metadata"]["labels"]["spinner.io/map-index"] == "3"
    assert pod["metadata"]["annotations"]["spinner.io/map-index"] == "3"
    assert key_of(pod) == key  # a restarted executor adopts the instance, not the unmapped task
    del pod["metadata"]["annotations"]["spinner.io/map-index"]
    assert key_of(pod) == key  # the label says it too
    unmapped = build({}, TryKey("etl", "manual__1", "load", 2))
    assert "spinner.io/map-index" not in unmapped["metadata"]["labels"]
    assert "spinner.io/map-index" not in unmapped["metadata"]["annotations"]
    assert key_of(unmapped) == TryKey("etl", "manual__1", "load", 2)


def test_the_logs_service_names_an_instances_pod_as_the_executor_does() -> None:
    from spinner.tasklog import LogId

    for map_index in (-1, 0, 5):
        log_id = LogId("etl", "load", "manual__1", 2, map_index=map_index)
        assert pod_name(log_id) == pod_name(TryKey("etl", "manual__1", "load", 2, map_index=map_index))


def test_a_task_try_key_message_names_the_same_pod() -> None:
    from spinner.v1 import common_pb2

    unmapped = common_pb2.TaskTryKey(dag_id="etl", run_id="manual__1", task_id="load", try_number=2)
    assert pod_name(unmapped) == pod_name(TryKey("etl", "manual__1", "load", 2))  # absent map_index: -1, not 0
    mapped = common_pb2.TaskTryKey(dag_id="etl", run_id="manual__1", task_id="load", try_number=2, map_index=0)
    assert pod_name(mapped) == pod_name(TryKey("etl", "manual__1", "load", 2, map_index=0))
