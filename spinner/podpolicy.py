"""What a task's `executor_config["pod_override"]` may set: one allow-list, checked twice.

The scheduler's parser checks every task's override against the policy when a DAG file is imported (a refused
one is the file's import error, naming the task), and the executor's Kubernetes backend checks it again before
it makes the pod (a refused one fails the try). Launch is the authority: it has the executor's own settings, and
the same DAG file may have been parsed under another policy (docs/adr/0010-pod-policy.md).

Anything not on the allow-list is refused, with the path of the offending value in the override and the
reason. Never allowed, whatever the settings say: privileged containers, privilege escalation, added
capabilities, running as root, host namespaces, host ports and hostPath volumes, another service account or
node, and a command or arguments for the task's own container (it must run the task runner).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

LABEL_PREFIX = "spinner.io/"  # the platform's own labels and annotations: how the executor knows its pods
MANAGED_BY = "app.kubernetes.io/managed-by"
TASK_CONTAINER = "task"

DEFAULT_VOLUME_KINDS = ("emptyDir", "configMap", "secret", "persistentVolumeClaim", "projected", "downwardAPI")
NEVER_VOLUME_KINDS = frozenset({"hostPath"})
# Scheduling on well-known node labels only picks a kind of machine; any value of these is allowed by default.
DEFAULT_NODE_SELECTORS: Mapping[str, tuple[str, ...]] = {
    "kubernetes.io/arch": (), "kubernetes.io/os": (), "node.kubernetes.io/instance-type": (),
    "topology.kubernetes.io/zone": (), "topology.kubernetes.io/region": (),
}  # fmt: skip
# Taints that only say what a machine costs or carries: GPU nodes, and spot nodes (GKE, AKS) that may go away.
# The platform's own Secrets (deploy/kubernetes): the database password, the runner-token and cookie keys.
# No policy may let a task's pod read them, whatever `allowed_secrets` says.
PLATFORM_SECRETS = ("spinner-database", "spinner-executor-secrets", "spinner-gateway-secrets")
DEFAULT_TOLERATION_KEYS = ("nvidia.com/gpu", "cloud.google.com/gke-spot", "kubernetes.azure.com/scalesetpriority")

# Pod spec fields an override may set; everything else (hostNetwork, hostPID, hostIPC, serviceAccountName,
# automountServiceAccountToken, nodeName, restartPolicy, ...) is refused.
POD_KEYS = frozenset(
    {"nodeSelector", "tolerations", "affinity", "volumes", "priorityClassName", "topologySpreadConstraints",
     "containers", "initContainers", "imagePullSecrets", "dnsConfig", "securityContext"}
)  # fmt: skip
NEVER_POD_KEYS = {
    "hostNetwork": "the pod would share the node's network",
    "hostPID": "the pod would see the node's processes",
    "hostIPC": "the pod would share the node's IPC namespace",
    "serviceAccountName": "a task runs as the platform's service account",
    "serviceAccount": "a task runs as the platform's service account",
    "automountServiceAccountToken": "a task runs as the platform's service account",
    "nodeName": "the scheduler of the cluster places pods (use an allowed nodeSelector)",
    "restartPolicy": "the executor tracks a try by its pod ending",
}
CONTAINER_KEYS = frozenset(
    {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "resources", "volumeMounts", "ports",
     "securityContext", "workingDir"}
)  # fmt: skip
CONTAINER_SECURITY_KEYS = frozenset(
    {"privileged", "allowPrivilegeEscalation", "capabilities", "runAsUser", "runAsGroup", "runAsNonRoot",
     "readOnlyRootFilesystem", "seccompProfile"}
)  # fmt: skip
POD_SECURITY_KEYS = frozenset(
    {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups", "seccompProfile"}
)  # fmt: skip
METADATA_KEYS = frozenset({"labels", "annotations"})

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|K|M|G|T|P|E)?$")


class PodPolicyError(ValueError):
    """A pod_override (or a quantity) the platform refuses; the message names what and why."""


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes quantity ("512Mi", "500m", "2") as a number of bytes or cores."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise PodPolicyError(f"{value!r} is not a Kubernetes quantity like 512Mi, 2Gi, 500m or 2")
    try:
        return Decimal(match.group(1)) * Decimal(str(_SUFFIXES[match.group(2) or ""]))
    except InvalidOperation:
        raise PodPolicyError(f"{value!r} is not a Kubernetes quantity") from None


@dataclass(frozen=True)
class PodPolicy:
    """The platform's limits on a task's pod. Defaults are safe: no extra containers, no other image."""

    image: str = "spinner:latest"  # the platform's own image: always allowed
    # Other images: an exact name, or a prefix ending in "*" ("registry.example.com/ml/*").
    allowed_images: tuple[str, ...] = ()
    volume_kinds: tuple[str, ...] = DEFAULT_VOLUME_KINDS
    # nodeSelector keys and, for each, the values allowed (empty: any value).
    node_selectors: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_NODE_SELECTORS))
    toleration_keys: tuple[str, ...] = DEFAULT_TOLERATION_KEYS
    # Sidecars (containers after the first) and initContainers; each is checked as the task's container is.
    allow_extra_containers: bool = False
    max_memory: str = "16Gi"
    max_cpu: str = "8"
    # Secrets of the namespace a pod may read (env valueFrom, envFrom, secret and projected volumes): exact
    # names, or prefixes ending in "*". None by default: a DAG file could otherwise name any Secret.
    allowed_secrets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        never = NEVER_VOLUME_KINDS & set(self.volume_kinds)
        if never:
            raise ValueError(f"volume kind(s) {sorted(never)} can never be allowed: they expose the node")
        platform = [name for name in PLATFORM_SECRETS if _matches(name, self.allowed_secrets)]
        if platform:
            raise ValueError(f"allowed secrets {list(self.allowed_secrets)} include the platform's own {platform}")
        for most in (self.max_memory, self.max_cpu):
            parse_quantity(most)

    def allows_image(self, image: str) -> bool:
        return image == self.image or _matches(image, self.allowed_images)

    def allows_secret(self, name: str) -> bool:
        return name not in PLATFORM_SECRETS and _matches(name, self.allowed_secrets)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PodPolicy:
        data = json.loads(text)
        return cls(
            image=str(data["image"]),
            allowed_images=tuple(data["allowed_images"]),
            volume_kinds=tuple(data["volume_kinds"]),
            node_selectors={str(k): tuple(v) for k, v in data["node_selectors"].items()},
            toleration_keys=tuple(data["toleration_keys"]),
            allow_extra_containers=bool(data["allow_extra_containers"]),
            max_memory=str(data["max_memory"]),
            max_cpu=str(data["max_cpu"]),
            allowed_secrets=tuple(data.get("allowed_secrets", ())),
        )


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    """An exact name, or a prefix ending in "*"."""
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)


def override_spec(override: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod spec and metadata of an override: a pod ({"spec": ..., "metadata": ...}) or a bare spec."""
    if "spec" in override:
        return override["spec"], override.get("metadata") or {}
    return dict(override), {}


def check_pod_override(override: object, policy: PodPolicy) -> None:
    """Raise PodPolicyError, naming the offending path in the override, for anything the policy refuses."""
    _Check(policy).override(override)


def _refuse(path: str, reason: str) -> PodPolicyError:
    return PodPolicyError(f"pod_override {path} is not allowed: {reason}")


def _dict(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(path, f"it must be a mapping, not {type(value).__name__}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _refuse(path, f"it must be a list, not {type(value).__name__}")
    return value


class _Check:
    def __init__(self, policy: PodPolicy) -> None:
        self.policy = policy

    def override(self, override: object) -> None:
        top = _dict(override, "(the override)")
        if "spec" in top:
            for name in top:
                if name not in ("spec", "metadata"):
                    raise _refuse(name, "an override is a pod's spec and metadata (labels, annotations)")
            self.metadata(top.get("metadata") or {}, "metadata")
            self.spec(_dict(top["spec"], "spec"), "spec.")
        else:
            self.spec(top, "")

    def metadata(self, meta: object, path: str) -> None:
        for name, value in _dict(meta, path).items():
            if name not in METADATA_KEYS:
                raise _refuse(f"{path}.{name}", "an override's metadata may set labels and annotations only")
            for key, text in _dict(value, f"{path}.{name}").items():
                where = f"{path}.{name}[{key!r}]"
                if not isinstance(key, str) or not isinstance(text, str):
                    raise _refuse(where, "keys and values must be strings")
                if key.startswith(LABEL_PREFIX) or key == MANAGED_BY:
                    raise _refuse(where, f"{LABEL_PREFIX} keys and {MANAGED_BY} are the platform's own")

    def spec(self, spec: dict[str, Any], at: str) -> None:
        for name in spec:
            if name in NEVER_POD_KEYS:
                raise _refuse(f"{at}{name}", NEVER_POD_KEYS[name])
            if name not in POD_KEYS:
                raise _refuse(f"{at}{name}", f"an override may set {', '.join(sorted(POD_KEYS))}")
        if "securityContext" in spec:
            self.security(spec["securityContext"], f"{at}securityContext", POD_SECURITY_KEYS)
        if "nodeSelector" in spec:
            self.node_selector(spec["nodeSelector"], f"{at}nodeSelector")
        if "affinity" in spec and "nodeAffinity" in _dict(spec["affinity"], f"{at}affinity"):
            raise _refuse(f"{at}affinity.nodeAffinity", "choose nodes with an allowed nodeSelector")
        for i, toleration in enumerate(_list(spec.get("tolerations", []), f"{at}tolerations")):
            self.toleration(toleration, f"{at}tolerations[{i}]")
        for i, volume in enumerate(_list(spec.get("volumes", []), f"{at}volumes")):
            self.volume(volume, f"{at}volumes[{i}]")
        containers = _list(spec.get("containers", []), f"{at}containers")
        init = _list(spec.get("initContainers", []), f"{at}initContainers")
        if not self.policy.allow_extra_containers:
            if len(containers) > 1:
                raise _refuse(f"{at}containers[1]", "the platform does not allow sidecar containers")
            if init:
                raise _refuse(f"{at}initContainers", "the platform does not allow init containers")
        for i, container in enumerate(containers):
            self.container(container, f"{at}containers[{i}]", task=i == 0)
        for i, container in enumerate(init):
            self.container(container, f"{at}initContainers[{i}]", task=False)

    def node_selector(self, selector: object, path: str) -> None:
        allowed = self.policy.node_selectors
        for key, value in _dict(selector, path).items():
            if key not in allowed:
                keys = ", ".join(sorted(allowed)) or "none"
                raise _refuse(f"{path}[{key!r}]", f"the node selector keys allowed are {keys}")
            if allowed[key] and value not in allowed[key]:
                raise _refuse(f"{path}[{key!r}]", f"{key} may be one of {', '.join(allowed[key])}")

    def toleration(self, toleration: object, path: str) -> None:
        key = _dict(toleration, path).get("key")
        if key not in self.policy.toleration_keys:
            keys = ", ".join(self.policy.toleration_keys) or "none"
            what = "a toleration without a key tolerates every taint" if not key else f"{key!r} is not one of them"
            raise _refuse(f"{path}.key", f"the toleration keys allowed are {keys}; {what}")

    def volume(self, volume: object, path: str) -> None:
        kinds = [name for name in _dict(volume, path) if name != "name"]
        for kind in kinds:
            if kind in NEVER_VOLUME_KINDS:
                raise _refuse(f"{path}.{kind}", "a volume from the node's own file system would escape the pod")
            if kind not in self.policy.volume_kinds:
                raise _refuse(f"{path}.{kind}", f"the volume kinds allowed are {', '.join(self.policy.volume_kinds)}")
        if "secret" in kinds:
            self.secret(_dict(volume, path)["secret"], "secretName", f"{path}.secret")
        if "projected" in kinds:
            projected = _dict(_dict(volume, path)["projected"], f"{path}.projected")
            for i, source in enumerate(_list(projected.get("sources", []), f"{path}.projected.sources")):
                where = f"{path}.projected.sources[{i}]"
                if "serviceAccountToken" in _dict(source, where):
                    raise _refuse(f"{where}.serviceAccountToken", "a task gets no token for the cluster's API")
                if "secret" in source:
                    self.secret(source["secret"], "name", f"{where}.secret")

    def secret(self, ref: object, key: str, path: str) -> None:
        """A reference to a Secret of the namespace: only those the platform allows."""
        name = _dict(ref, path).get(key)
        if not isinstance(name, str) or not self.policy.allows_secret(name):
            allowed = ", ".join(self.policy.allowed_secrets) or "none"
            raise _refuse(f"{path}.{key}", f"{name!r} is not a Secret tasks may read (allowed: {allowed})")

    def container(self, container: object, path: str, *, task: bool) -> None:
        spec = _dict(container, path)
        for name in spec:
            if name not in CONTAINER_KEYS:
                raise _refuse(f"{path}.{name}", f"a container may set {', '.join(sorted(CONTAINER_KEYS))}")
            if task and name in ("command", "args"):
                raise _refuse(f"{path}.{name}", "the task's container runs the task runner")
        if task and spec.get("name", TASK_CONTAINER) != TASK_CONTAINER:
            raise _refuse(f"{path}.name", f"the first container is the task's own, named {TASK_CONTAINER!r}")
        if not task and not spec.get("image"):
            raise _refuse(f"{path}.image", "an extra container names its image (one the platform allows)")
        if "image" in spec and not self.policy.allows_image(str(spec["image"])):
            allowed = ", ".join((self.policy.image, *self.policy.allowed_images))
            raise _refuse(f"{path}.image", f"{spec['image']!r} is not an allowed image ({allowed})")
        for i, port in enumerate(_list(spec.get("ports", []), f"{path}.ports")):
            for name in ("hostPort", "hostIP"):
                if name in _dict(port, f"{path}.ports[{i}]"):
                    raise _refuse(f"{path}.ports[{i}].{name}", "a task may not listen on the node's addresses")
        for i, var in enumerate(_list(spec.get("env", []), f"{path}.env")):
            value_from = _dict(var, f"{path}.env[{i}]").get("valueFrom")
            if value_from is not None and "secretKeyRef" in _dict(value_from, f"{path}.env[{i}].valueFrom"):
                self.secret(value_from["secretKeyRef"], "name", f"{path}.env[{i}].valueFrom.secretKeyRef")
        for i, source in enumerate(_list(spec.get("envFrom", []), f"{path}.envFrom")):
            if "secretRef" in _dict(source, f"{path}.envFrom[{i}]"):
                self.secret(source["secretRef"], "name", f"{path}.envFrom[{i}].secretRef")
        if "securityContext" in spec:
            self.security(spec["securityContext"], f"{path}.securityContext", CONTAINER_SECURITY_KEYS)
        if "resources" in spec:
            self.resources(spec["resources"], f"{path}.resources")

    def security(self, context: object, path: str, allowed: frozenset[str]) -> None:
        values = _dict(context, path)
        for name in values:
            if name not in allowed:
                raise _refuse(f"{path}.{name}", f"a securityContext here may set {', '.join(sorted(allowed))}")
        if values.get("privileged"):
            raise _refuse(f"{path}.privileged", "a privileged container controls the node")
        if values.get("allowPrivilegeEscalation"):
            raise _refuse(f"{path}.allowPrivilegeEscalation", "a task may not gain privileges")
        if "capabilities" in values and _dict(values["capabilities"], f"{path}.capabilities").get("add"):
            raise _refuse(f"{path}.capabilities.add", "a task may drop capabilities, never add them")
        for name in ("runAsUser", "runAsGroup"):
            if name in values and values[name] == 0:
                raise _refuse(f"{path}.{name}", "a task may not run as root")
        if values.get("runAsNonRoot") is False:
            raise _refuse(f"{path}.runAsNonRoot", "a task may not run as root")
        seccomp = values.get("seccompProfile")
        if seccomp is not None and _dict(seccomp, f"{path}.seccompProfile").get("type") == "Unconfined":
            raise _refuse(f"{path}.seccompProfile.type", "a task's system calls stay filtered")

    def resources(self, resources: object, path: str) -> None:
        maxima = {"memory": self.policy.max_memory, "cpu": self.policy.max_cpu}
        for part, amounts in _dict(resources, path).items():
            if part not in ("requests", "limits"):
                raise _refuse(f"{path}.{part}", "resources are requests and limits")
            for name, value in _dict(amounts, f"{path}.{part}").items():
                where = f"{path}.{part}.{name}"
                if name not in maxima:
                    raise _refuse(where, "an override may set memory and cpu")
                try:
                    amount = parse_quantity(value)
                except PodPolicyError as e:
                    raise _refuse(where, str(e)) from None
                if amount <= 0 or amount > parse_quantity(maxima[name]):
                    raise _refuse(where, f"{value} is not between zero and the platform's maximum of {maxima[name]}")
