"""Kubernetes bits shared by the executor (makes pods) and the logs service (reads their logs)."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol, cast

from spinner.mapping import NO_MAP_INDEX, key_map_index

NAME_MAX = 63
HASH_LEN = 8


class TryIdentity(Protocol):
    @property
    def dag_id(self) -> str: ...
    @property
    def task_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def try_number(self) -> int: ...


def _dns_part(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def _map_index(key: TryIdentity) -> int:
    """The key's map_index: a TaskTryKey message's optional field (absent: -1, where reading it gives 0),
    or a TryKey's or LogId's attribute; -1 for a key without one."""
    if hasattr(key, "HasField"):
        return key_map_index(cast(Any, key))
    return int(getattr(key, "map_index", NO_MAP_INDEX))


def pod_name(key: TryIdentity) -> str:
    """A readable DNS-1123 name of at most 63 characters, the same for the same try on every call.

    dag, task and run id are shortened to fit; the hash of the exact key keeps two tries that
    shorten to the same text apart. A mapped task's instance adds its map_index (`-m<i>`) in front
    of the try number, inside the 63 characters.
    """
    parts_of_key = [key.dag_id, key.task_id, key.run_id, str(key.try_number)]
    # A sensor's try runs one process per poke in reschedule mode (docs/adr/0006): the n-th reschedule
    # gets its own name, so it never meets the previous poke's pod while that one is being deleted.
    reschedule = int(getattr(key, "reschedule", 0) or 0)
    if reschedule:
        parts_of_key.append(f"r{reschedule}")
    # An instance of a mapped task (docs/adr/0007) says which one, before the try: `...-m3-1-<hash>`.
    # An unmapped task (-1) adds nothing, so its name (hash included) is what it always was.
    map_index = _map_index(key)
    if map_index >= 0:
        parts_of_key.append(f"m{map_index}")
    digest = hashlib.sha256("\x00".join(parts_of_key).encode()).hexdigest()[:HASH_LEN]
    instance = f"-m{map_index}" if map_index >= 0 else ""
    tail = f"{instance}-{key.try_number}{f'r{reschedule}' if reschedule else ''}-{digest}"
    room = NAME_MAX - len(tail)
    parts = [p for p in (_dns_part(key.dag_id), _dns_part(key.task_id), _dns_part(key.run_id)) if p]
    budget = [22, 18, room]  # dag and task keep most of their names; the run gets what is left
    out: list[str] = []
    used = 0
    for part, cap in zip(parts, budget, strict=False):
        left = room - used - (1 if out else 0)
        piece = part[: min(cap, left)].strip("-")
        if piece:
            out.append(piece)
            used += len(piece) + (1 if len(out) > 1 else 0)
    head = "-".join(out) or "task"
    name = (head[:room].strip("-") or "task") + tail
    if not name[0].isalpha():
        name = "t" + name[: NAME_MAX - 1]
    return name


async def core_api(kubeconfig: str) -> tuple[object, object]:
    """(ApiClient, CoreV1Api) from a kubeconfig file, or the in-cluster service account when empty.

    Close the ApiClient when done.
    """
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    if kubeconfig:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    api = client.ApiClient(configuration)
    return api, client.CoreV1Api(api)
