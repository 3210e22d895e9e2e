"""What a task try's pod is: its name, labels and manifest, and which executor_config the platform allows.

Pure functions, no API calls: the Kubernetes backend builds every pod with them, and a refused
executor_config is refused here, before any request reaches the API server.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from services.executor.backends.base import LaunchRefused, TryKey
from spinner.kube import pod_name
from spinner.mapping import NO_MAP_INDEX
from spinner.podpolicy import (
    LABEL_PREFIX,
    MANAGED_BY,
    TASK_CONTAINER,
    PodPolicy,
    PodPolicyError,
    check_pod_override,
    override_spec,
    parse_quantity,
)

LABEL_MAX = 63

ANNOTATION_KEYS = ("dag-id", "run-id", "task-id", "try-number")
RESCHEDULE_ANNOTATION = f"{LABEL_PREFIX}reschedule"  # only on a sensor's rescheduled pokes (docs/adr/0006)
# Only on an instance of a mapped task (docs/adr/0007), as a label (select a task's instances) and an annotation.
MAP_INDEX = f"{LABEL_PREFIX}map-index"


class PodSpecError(LaunchRefused):
    """executor_config asks for something the platform does not allow; the message says what and why."""


@dataclass(frozen=True)
class PodSettings:
    namespace: str = "spinner"
    image_pull_policy: str = "IfNotPresent"
    service_account: str = "spinner-task"
    executor_name: str = "executor-0"
    default_request_memory: str = "256Mi"
    default_request_cpu: str = "100m"
    # The task image, the maxima and what pod_override may set (spinner/podpolicy.py).
    policy: PodPolicy = field(default_factory=PodPolicy)


def label_value(text: str) -> str:
    """A legal label value: at most 63 of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:LABEL_MAX]
    return value.strip("_.-")


def labels(key: TryKey, partition: str, executor_name: str) -> dict[str, str]:
    out = {
        MANAGED_BY: "spinner",
        f"{LABEL_PREFIX}executor": label_value(executor_name),
        f"{LABEL_PREFIX}partition": label_value(partition),
        f"{LABEL_PREFIX}dag-id": label_value(key.dag_id),
        f"{LABEL_PREFIX}task-id": label_value(key.task_id),
        f"{LABEL_PREFIX}run-id": label_value(key.run_id),
        f"{LABEL_PREFIX}try-number": str(key.try_number),
    }
    if key.map_index >= 0:
        out[MAP_INDEX] = str(key.map_index)
    return out


def pod_annotations(key: TryKey) -> dict[str, str]:
    """The exact key (labels are shortened and rewritten): how the executor knows a pod's try."""
    values = (key.dag_id, key.run_id, key.task_id, str(key.try_number))
    notes = {f"{LABEL_PREFIX}{name}": value for name, value in zip(ANNOTATION_KEYS, values, strict=True)}
    if key.reschedule:
        notes[RESCHEDULE_ANNOTATION] = str(key.reschedule)
    if key.map_index >= 0:
        notes[MAP_INDEX] = str(key.map_index)
    return notes


def key_of(pod: dict[str, Any]) -> TryKey | None:
    """The try a pod runs, from its annotations (a mapped instance's map_index also from its label, should
    the annotation be gone); None for a pod that is not a task try's."""
    meta = pod.get("metadata") or {}
    notes = meta.get("annotations") or {}
    try:
        dag_id, run_id, task_id, try_number = (notes[f"{LABEL_PREFIX}{n}"] for n in ANNOTATION_KEYS)
        map_index = notes.get(MAP_INDEX) or (meta.get("labels") or {}).get(MAP_INDEX) or NO_MAP_INDEX
        return TryKey(
            dag_id, run_id, task_id, int(try_number), int(notes.get(RESCHEDULE_ANNOTATION) or 0),
            map_index=int(map_index),
        )  # fmt: skip
    except (KeyError, ValueError):
        return None


def resources(config: dict[str, Any], settings: PodSettings) -> dict[str, dict[str, str]]:
    """Requests and limits from executor_config, checked against the platform's maxima."""
    req_mem = str(config.get("request_memory") or settings.default_request_memory)
    req_cpu = str(config.get("request_cpu") or settings.default_request_cpu)
    lim_mem = str(config.get("limit_memory") or req_mem)
    lim_cpu = config.get("limit_cpu")
    most_memory, most_cpu = settings.policy.max_memory, settings.policy.max_cpu
    checks = [("request_memory", req_mem, most_memory), ("limit_memory", lim_mem, most_memory),
              ("request_cpu", req_cpu, most_cpu)]  # fmt: skip
    if lim_cpu is not None:
        checks.append(("limit_cpu", str(lim_cpu), most_cpu))
    for name, value, most in checks:
        amount = parse_quantity(value)
        if amount <= 0:
            raise PodSpecError(f"executor_config {name}={value} must be more than zero")
        if amount > parse_quantity(most):
            raise PodSpecError(f"executor_config {name}={value} is over the platform's maximum of {most}")
    if parse_quantity(lim_mem) < parse_quantity(req_mem):
        raise PodSpecError(f"executor_config limit_memory={lim_mem} is below request_memory={req_mem}")
    if lim_cpu is not None and parse_quantity(str(lim_cpu)) < parse_quantity(req_cpu):
        raise PodSpecError(f"executor_config limit_cpu={lim_cpu} is below request_cpu={req_cpu}")
    limits = {"memory": lim_mem} | ({"cpu": str(lim_cpu)} if lim_cpu is not None else {})
    return {"requests": {"memory": req_mem, "cpu": req_cpu}, "limits": limits}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Strategic merge in small: dicts merge, the first container merges by position, lists append."""
    out = copy.deepcopy(base)
    for name, value in extra.items():
        if name == "containers" and isinstance(value, list) and value:
            first = _merge(out["containers"][0], value[0]) if isinstance(value[0], dict) else out["containers"][0]
            out["containers"] = [first, *out["containers"][1:], *value[1:]]
        elif isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = _merge(out[name], value)
        elif isinstance(value, list) and isinstance(out.get(name), list):
            out[name] = [*out[name], *value]
        else:
            out[name] = copy.deepcopy(value)
    return out


def build_pod(
    key: TryKey,
    *,
    partition: str,
    argv: list[str],
    env: dict[str, str],
    config: dict[str, Any],
    settings: PodSettings,
) -> dict[str, Any]:
    """The pod manifest of one try; raises PodSpecError for an executor_config the platform refuses."""
    try:
        return _build_pod(key, partition=partition, argv=argv, env=env, config=config, settings=settings)
    except PodPolicyError as e:
        raise PodSpecError(f"executor_config {e}") from None


def _build_pod(
    key: TryKey,
    *,
    partition: str,
    argv: list[str],
    env: dict[str, str],
    config: dict[str, Any],
    settings: PodSettings,
) -> dict[str, Any]:
    extra_env = config.get("env") or {}
    if not isinstance(extra_env, dict):
        raise PodSpecError("executor_config env must map names to strings")
    override = config.get("pod_override") or {}
    if not isinstance(override, dict):
        raise PodSpecError("executor_config pod_override must be a dict")
    check_pod_override(override, settings.policy)
    override_pod, override_meta = override_spec(override)
    requirements = config.get("requirements")
    if requirements is not None and (not isinstance(requirements, str) or requirements.startswith("/")
                                     or ".." in requirements.split("/")):  # fmt: skip
        raise PodSpecError("executor_config requirements must be a path inside the DAG folder, like requirements.txt")
    merged_env = {str(k): str(v) for k, v in extra_env.items()} | env  # the platform's values win
    if requirements:
        merged_env["SPINNER_REQUIREMENTS"] = requirements
    container = {
        "name": TASK_CONTAINER,
        "image": settings.policy.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": argv[:1],
        "args": argv[1:],
        "env": [{"name": k, "value": v} for k, v in sorted(merged_env.items())],
        "resources": resources(config, settings),
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": settings.service_account,
        "containers": [container],
    }
    spec = _merge(spec, override_pod)
    # A DAG's own labels and annotations go along; the platform's (checked not to be overridden) win.
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(key),
            "namespace": settings.namespace,
            "labels": dict(override_meta.get("labels") or {}) | labels(key, partition, settings.executor_name),
            "annotations": dict(override_meta.get("annotations") or {}) | pod_annotations(key),
        },
        "spec": spec,
    }
