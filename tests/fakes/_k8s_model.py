"""Records of the fake Kubernetes API server (pods, watch events, fault rules) and small helpers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import enum
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fakes._k8s_validation import ApiError, label_selector

NODE_NAME = "fake-node-1"
HOST_IP = "10.0.0.1"


class Fault(enum.Enum):
    UNSCHEDULABLE = "unschedulable"
    IMAGE_PULL = "image_pull"
    OOM_KILLED = "oom_killed"
    EVICTED = "evicted"
    NODE_LOST = "node_lost"


def now() -> datetime:
    return datetime.now(UTC)


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Rule:
    fault: Fault
    namespace: str | None
    name: str | None
    matches: Callable[[Mapping[str, str]], bool]
    after: float
    times: int | None


@dataclass
class Pod:
    obj: dict[str, Any]
    log: list[tuple[datetime, bytes]] = field(default_factory=list)
    log_signal: asyncio.Event = field(default_factory=asyncio.Event)
    output_done: bool = False
    started: bool = False  # the container's process was started (logs are served)
    process: asyncio.subprocess.Process | None = None
    lifecycle: asyncio.Task[None] | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)
    kill_reason: str | None = None  # OOMKilled / Evicted: how the container's end is reported
    node_lost: bool = False
    gone: bool = False
    faults: list[Rule] = field(default_factory=list)
    recorded: dict[str, Any] | None = None  # the object as its last event carried it

    @property
    def key(self) -> tuple[str, str]:
        return self.obj["metadata"]["namespace"], self.obj["metadata"]["name"]

    def append_log(self, line: bytes) -> None:
        self.log.append((now(), line))
        self.wake_log_readers()

    def wake_log_readers(self) -> None:
        old, self.log_signal = self.log_signal, asyncio.Event()
        old.set()


@dataclass
class Event:
    type: str
    rv: int
    obj: dict[str, Any]
    prev: dict[str, Any] | None = None  # the object as the previous event left it

    def as_seen_by(self, selected: Callable[[Mapping[str, Any]], bool]) -> tuple[str, dict[str, Any]] | None:
        """What a watch with this selector receives, as the watch cache does: an object that starts matching
        is ADDED, one that stops matching is DELETED (its previous content at this resourceVersion)."""
        now = selected(self.obj)
        before = self.prev is not None and selected(self.prev)
        if self.type != "MODIFIED" or now == before:
            return (self.type, self.obj) if now else None
        if now:
            return "ADDED", self.obj
        assert self.prev is not None
        gone = copy.deepcopy(self.prev)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        return "DELETED", gone


def label_matcher(selector: str) -> Callable[[Mapping[str, str]], bool]:
    return label_selector(selector)


def flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def int_param(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError as e:
        raise ApiError(400, "BadRequest", f"invalid {what}: {text!r}") from e


def expand(value: str, env: Mapping[str, str]) -> str:
    """$(VAR) references to earlier variables, as the kubelet expands them; $$ escapes."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and (end := value.find(")", i)) > 0 and value[i + 2 : end] in env:
            out.append(env[value[i + 2 : end]])
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def signal_group(process: asyncio.subprocess.Process | None, sig: int) -> None:
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def container_env(pod: Pod, base_env: Mapping[str, str], home: Path) -> dict[str, str]:
    """The environment of a pod's container: the base, HOSTNAME, HOME, then its env (values, fieldRefs, $(VAR))."""
    env = dict(base_env)
    env["HOSTNAME"] = pod.obj["metadata"]["name"]
    env.setdefault("HOME", str(home))
    refs = {
        "metadata.name": pod.obj["metadata"]["name"],
        "metadata.namespace": pod.obj["metadata"]["namespace"],
        "metadata.uid": pod.obj["metadata"]["uid"],
        "spec.nodeName": NODE_NAME,
        "spec.serviceAccountName": pod.obj["spec"].get("serviceAccountName", ""),
        "status.podIP": pod.obj["status"].get("podIP", ""),
        "status.hostIP": HOST_IP,
    }
    for item in pod.obj["spec"]["containers"][0].get("env") or []:
        source = item.get("valueFrom") or {}
        if "fieldRef" in source:
            env[item["name"]] = refs.get(source["fieldRef"].get("fieldPath", ""), "")
        elif source:
            raise ValueError(f"valueFrom {sorted(source)} is not supported by the fake")
        else:
            env[item["name"]] = expand(str(item.get("value", "")), env)
    return env


def encode_continue(rv: int, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(after)}).encode()).decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ApiError(400, "BadRequest", f"continue key is not valid: {e}") from e
