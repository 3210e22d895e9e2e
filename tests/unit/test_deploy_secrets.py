"""Which secrets each container of the Kubernetes manifests gets (issue 14: the scheduler pod, which runs
DAG code at parse time, got the runner-token key and every other secret through one envFrom)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"

# Secret settings and who may hold them; a container holding one not listed for it fails the test.
MAY_HOLD = {
    "SPINNER_DATABASE_URL": {"scheduler", "dagsync", "executor", "logs", "gateway"},
    "SPINNER_TOKEN_SECRET": {"executor"},
    "SPINNER_FERNET_KEY": {"executor", "gateway"},
    "SPINNER_SMTP_USER": {"executor"},
    "SPINNER_SMTP_PASSWORD": {"executor"},
    "SPINNER_SECRET_KEY": {"gateway"},
}


def _documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(DEPLOY.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _secret_keys(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {
        d["metadata"]["name"]: set(d.get("stringData") or {}) | set(d.get("data") or {})
        for d in docs
        if d["kind"] == "Secret"
    }


def _held(container: dict[str, Any], secrets: dict[str, set[str]]) -> set[str]:
    held: set[str] = set()
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            held |= secrets[source["secretRef"]["name"]]
    for var in container.get("env") or []:
        if "secretKeyRef" in (var.get("valueFrom") or {}):
            held.add(var["name"])
    return held


def test_each_container_gets_only_the_secrets_it_needs() -> None:
    docs = _documents()
    secrets = _secret_keys(docs)
    seen: dict[str, set[str]] = {}
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        for container in d["spec"]["template"]["spec"]["containers"]:
            service = container["args"][0]
            seen[service] = _held(container, secrets)
    print("secret settings by service:", {s: sorted(k) for s, k in seen.items()})
    assert set(seen) == {"scheduler", "dagsync", "executor", "logs", "gateway"}
    for service, keys in seen.items():
        for key in keys:
            assert service in MAY_HOLD.get(key, set()), f"{service} gets {key}"
    assert "SPINNER_DATABASE_URL" in seen["dagsync"], "dagsync reads which versions runs still use"
    assert seen["scheduler"] == {"SPINNER_DATABASE_URL"}
    assert {"SPINNER_TOKEN_SECRET", "SPINNER_FERNET_KEY"} <= seen["executor"]
    assert "SPINNER_SECRET_KEY" in seen["gateway"]
