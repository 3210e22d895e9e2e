"""What a pod_override may set (spinner/podpolicy.py): each refusal names the offending path and says why."""

from __future__ import annotations

import re
from typing import Any

import pytest

from spinner.podpolicy import PodPolicy, PodPolicyError, check_pod_override, parse_quantity

POLICY = PodPolicy(
    image="spinner:1", allowed_images=("registry.example.com/ml/*", "busybox:1.36"), max_memory="8Gi",
    allowed_secrets=("ads-*", "warehouse-readonly"),
)  # fmt: skip
OPEN = PodPolicy(image="spinner:1", allowed_images=("busybox:1.36",), allow_extra_containers=True)


def spec(**fields: Any) -> dict[str, Any]:
    return {"spec": fields}


@pytest.mark.parametrize(
    ("override", "path", "why"),
    [
        (spec(hostNetwork=True), "spec.hostNetwork", "the node's network"),
        (spec(hostPID=True), "spec.hostPID", "the node's processes"),
        (spec(hostIPC=True), "spec.hostIPC", "IPC"),
        (spec(serviceAccountName="admin"), "spec.serviceAccountName", "the platform's service account"),
        (spec(serviceAccount="admin"), "spec.serviceAccount", "the platform's service account"),
        (spec(automountServiceAccountToken=True), "spec.automountServiceAccountToken", "service account"),
        (spec(nodeName="control-plane-0"), "spec.nodeName", "nodeSelector"),
        (spec(restartPolicy="Always"), "spec.restartPolicy", "its pod ending"),
        (spec(shareProcessNamespace=True), "spec.shareProcessNamespace", "an override may set"),
        (spec(volumes=[{"name": "root", "hostPath": {"path": "/"}}]), "spec.volumes[0].hostPath", "node's own file"),
        (spec(volumes=[{"name": "n", "nfs": {"server": "x", "path": "/"}}]), "spec.volumes[0].nfs", "kinds allowed"),
        (spec(nodeSelector={"pool": "highmem"}), "spec.nodeSelector['pool']", "keys allowed are kubernetes.io/arch"),
        (spec(affinity={"nodeAffinity": {}}), "spec.affinity.nodeAffinity", "nodeSelector"),
        (spec(tolerations=[{"operator": "Exists"}]), "spec.tolerations[0].key", "tolerates every taint"),
        (
            spec(tolerations=[{"key": "node-role.kubernetes.io/control-plane"}]),
            "spec.tolerations[0].key",
            "nvidia.com/gpu",
        ),
        (spec(containers=[{"image": "evil:latest"}]), "spec.containers[0].image", "'evil:latest' is not an allowed"),
        (spec(containers=[{"command": ["sh"]}]), "spec.containers[0].command", "runs the task runner"),
        (spec(containers=[{"args": ["-c", "id"]}]), "spec.containers[0].args", "runs the task runner"),
        (spec(containers=[{"name": "mine"}]), "spec.containers[0].name", "named 'task'"),
        (spec(containers=[{"lifecycle": {}}]), "spec.containers[0].lifecycle", "a container may set"),
        (
            spec(containers=[{"ports": [{"containerPort": 80, "hostPort": 80}]}]),
            "spec.containers[0].ports[0].hostPort",
            "node's addresses",
        ),
        (
            spec(containers=[{"securityContext": {"privileged": True}}]),
            "spec.containers[0].securityContext.privileged",
            "controls the node",
        ),
        (
            spec(containers=[{"securityContext": {"allowPrivilegeEscalation": True}}]),
            "spec.containers[0].securityContext.allowPrivilegeEscalation",
            "gain privileges",
        ),
        (
            spec(containers=[{"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]),
            "spec.containers[0].securityContext.capabilities.add",
            "never add",
        ),
        (
            spec(containers=[{"securityContext": {"runAsUser": 0}}]),
            "spec.containers[0].securityContext.runAsUser",
            "as root",
        ),
        (spec(securityContext={"runAsNonRoot": False}), "spec.securityContext.runAsNonRoot", "as root"),
        (spec(securityContext={"sysctls": []}), "spec.securityContext.sysctls", "securityContext here may set"),
        (
            spec(containers=[{"resources": {"limits": {"memory": "64Gi"}}}]),
            "spec.containers[0].resources.limits.memory",
            "platform's maximum of 8Gi",
        ),
        (
            spec(containers=[{"resources": {"requests": {"cpu": "9"}}}]),
            "spec.containers[0].resources.requests.cpu",
            "platform's maximum of 8",
        ),
        (
            spec(containers=[{"resources": {"limits": {"nvidia.com/gpu": 1}}}]),
            "spec.containers[0].resources.limits.nvidia.com/gpu",
            "memory and cpu",
        ),
        (spec(containers=[{}, {"name": "side", "image": "spinner:1"}]), "spec.containers[1]", "sidecar"),
        (spec(initContainers=[{"name": "init", "image": "spinner:1"}]), "spec.initContainers", "init containers"),
        (
            {"metadata": {"labels": {"spinner.io/task-id": "other"}}, "spec": {}},
            "metadata.labels['spinner.io/task-id']",
            "the platform's own",
        ),
        (
            {"metadata": {"annotations": {"app.kubernetes.io/managed-by": "me"}}, "spec": {}},
            "metadata.annotations['app.kubernetes.io/managed-by']",
            "the platform's own",
        ),
        ({"metadata": {"name": "mine"}, "spec": {}}, "metadata.name", "labels and annotations only"),
        # Secrets of the namespace: only those the platform names, never its own (the database password...).
        (
            spec(volumes=[{"name": "db", "secret": {"secretName": "spinner-database"}}]),
            "spec.volumes[0].secret.secretName",
            "'spinner-database' is not a Secret tasks may read (allowed: ads-*, warehouse-readonly)",
        ),
        (spec(volumes=[{"name": "s", "secret": {}}]), "spec.volumes[0].secret.secretName", "None is not a Secret"),
        (
            spec(containers=[{"env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "payroll", "key": "k"}}}]}]),
            "spec.containers[0].env[0].valueFrom.secretKeyRef.name",
            "'payroll' is not a Secret tasks may read",
        ),
        (
            spec(containers=[{"envFrom": [{"secretRef": {"name": "spinner-executor-secrets"}}]}]),
            "spec.containers[0].envFrom[0].secretRef.name",
            "'spinner-executor-secrets' is not a Secret",
        ),
        (
            spec(volumes=[{"name": "p", "projected": {"sources": [{"secret": {"name": "spinner-gateway-secrets"}}]}}]),
            "spec.volumes[0].projected.sources[0].secret.name",
            "is not a Secret tasks may read",
        ),
        (
            spec(volumes=[{"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]),
            "spec.volumes[0].projected.sources[0].serviceAccountToken",
            "no token for the cluster's API",
        ),
        ({"hostNetwork": True}, "hostNetwork", "the node's network"),  # a bare spec: the path is as written
    ],
)
def test_refused_overrides_name_the_path_and_the_reason(override: dict[str, Any], path: str, why: str) -> None:
    with pytest.raises(PodPolicyError, match=re.escape(f"pod_override {path} is not allowed: ")) as refused:
        check_pod_override(override, POLICY)
    assert why in str(refused.value)


@pytest.mark.parametrize(
    ("override", "path", "why"),
    [
        (
            spec(initContainers=[{"name": "i", "image": "busybox:1.36", "securityContext": {"privileged": True}}]),
            "spec.initContainers[0].securityContext.privileged",
            "controls the node",
        ),
        (spec(initContainers=[{"name": "i", "image": "alpine"}]), "spec.initContainers[0].image", "not an allowed"),
        (spec(initContainers=[{"name": "i", "command": ["true"]}]), "spec.initContainers[0].image", "names its image"),
        (
            spec(containers=[{}, {"name": "s", "image": "busybox:1.36", "ports": [{"hostPort": 1}]}]),
            "spec.containers[1].ports[0].hostPort",
            "node's addresses",
        ),
    ],
)
def test_extra_containers_when_allowed_are_checked_as_the_task_container_is(
    override: dict[str, Any], path: str, why: str
) -> None:
    with pytest.raises(PodPolicyError, match=re.escape(f"pod_override {path} is not allowed: ")) as refused:
        check_pod_override(override, OPEN)
    assert why in str(refused.value)


@pytest.mark.parametrize(
    "override",
    [
        {},
        spec(nodeSelector={"kubernetes.io/arch": "arm64", "node.kubernetes.io/instance-type": "m5.4xlarge"}),
        spec(tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]),
        spec(
            volumes=[
                {"name": f"v{k}", kind: {}}
                for k, kind in enumerate(("emptyDir", "configMap", "persistentVolumeClaim", "downwardAPI"))
            ]
            + [
                {"name": "creds", "secret": {"secretName": "warehouse-readonly"}},
                {
                    "name": "both",
                    "projected": {"sources": [{"secret": {"name": "ads-api"}}, {"configMap": {"name": "c"}}]},
                },
            ]
        ),
        spec(
            containers=[
                {
                    "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "ads-api", "key": "key"}}}],
                    "envFrom": [{"secretRef": {"name": "warehouse-readonly"}}, {"configMapRef": {"name": "c"}}],
                }
            ]
        ),
        spec(containers=[{"image": "spinner:1"}]),  # the platform's own image
        spec(containers=[{"image": "registry.example.com/ml/torch:2.5"}]),  # a prefix pattern
        spec(
            containers=[
                {
                    "name": "task",
                    "env": [{"name": "A", "value": "1"}],
                    "workingDir": "/work",
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                    "resources": {"requests": {"memory": "2Gi", "cpu": "500m"}, "limits": {"memory": "8Gi"}},
                    "securityContext": {
                        "runAsUser": 1000,
                        "runAsNonRoot": True,
                        "privileged": False,
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ]
        ),
        spec(securityContext={"runAsUser": 1000, "fsGroup": 2000}),
        spec(affinity={"podAntiAffinity": {}}, priorityClassName="batch"),
        {"metadata": {"labels": {"team": "ads"}, "annotations": {"example.com/cost-center": "42"}}, "spec": {}},
    ],
)
def test_allowed_overrides_pass(override: dict[str, Any]) -> None:
    check_pod_override(override, POLICY)


def test_sidecars_and_init_containers_of_allowed_images_pass_when_the_platform_allows_them() -> None:
    check_pod_override(spec(
        initContainers=[{"name": "fetch", "image": "busybox:1.36", "command": ["sh", "-c", "echo ready"]}],
        containers=[{}, {"name": "proxy", "image": "busybox:1.36", "args": ["sleep", "3600"]}],
    ), OPEN)  # fmt: skip


def test_the_configured_sets_replace_the_defaults() -> None:
    policy = PodPolicy(node_selectors={"pool": ("highmem", "gpu")}, toleration_keys=("dedicated",),
                       volume_kinds=("emptyDir",))  # fmt: skip
    check_pod_override(spec(nodeSelector={"pool": "gpu"}, tolerations=[{"key": "dedicated"}]), policy)
    with pytest.raises(PodPolicyError, match=re.escape("spec.nodeSelector['pool'] is not allowed: pool may be one")):
        check_pod_override(spec(nodeSelector={"pool": "other"}), policy)
    with pytest.raises(PodPolicyError, match=re.escape("spec.volumes[0].configMap is not allowed")):
        check_pod_override(spec(volumes=[{"name": "c", "configMap": {"name": "x"}}]), policy)


def test_host_path_can_never_be_configured() -> None:
    with pytest.raises(ValueError, match="hostPath"):
        PodPolicy(volume_kinds=("emptyDir", "hostPath"))


def test_the_platforms_own_secrets_can_never_be_allowed() -> None:
    with pytest.raises(ValueError, match="include the platform's own"):
        PodPolicy(allowed_secrets=("spinner-*",))
    with pytest.raises(ValueError, match="spinner-database"):
        PodPolicy(allowed_secrets=("spinner-database",))


def test_a_policy_survives_its_trip_to_the_parse_worker() -> None:
    policy = PodPolicy(image="spinner:2", allowed_images=("a/*",), node_selectors={"pool": ("x",)},
                       allow_extra_containers=True, max_cpu="2", allowed_secrets=("ads-*",))  # fmt: skip
    assert PodPolicy.from_json(policy.to_json()) == policy
    assert PodPolicy.from_json(PodPolicy().to_json()) == PodPolicy()


def test_quantities() -> None:
    assert parse_quantity("512Mi") == 512 * 2**20
    assert parse_quantity("500m") * 1000 == 500
    with pytest.raises(PodPolicyError, match="not a Kubernetes quantity"):
        parse_quantity("lots")
