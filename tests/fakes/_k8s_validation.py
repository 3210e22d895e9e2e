"""What the fake Kubernetes API server checks and parses: names, labels, selectors, quantities, Status objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


class ApiError(Exception):
    """An error answer, carried as a Kubernetes Status object."""

    def __init__(self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = dict(details or {})

    def status(self) -> dict[str, Any]:
        return status_object(self.code, self.reason, self.message, self.details)


def status_object(code: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        obj["details"] = dict(details)
    return obj


def parse_quantity(text: str) -> Decimal:
    m = QUANTITY.match(str(text))
    if not m:
        raise ValueError(text)
    try:
        number = Decimal(m.group(1))
    except InvalidOperation as e:
        raise ValueError(text) from e
    suffix = m.group(2) or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIX.get(suffix, Decimal(1))


def label_key_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    errors = []
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        errors.append("prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        errors.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an"
            " alphanumeric character, and be at most 63 characters"
        )
    return errors


def label_value_errors(value: object) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not LABEL_VALUE.match(value):
        errors.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and"
            " must start and end with an alphanumeric character"
        )
    return errors


def validate_pod(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    """Causes (field, reason, message) the real API server would refuse this pod for, in the subset checked here."""
    causes: list[dict[str, str]] = []

    def bad(field: str, reason: str, message: str) -> None:
        causes.append({"field": field, "reason": reason, "message": message})

    meta = pod.get("metadata") or {}
    name = meta.get("name") or ""
    if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        bad("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": a lowercase RFC 1123 subdomain')
    for kind in ("labels", "annotations"):
        for key, value in (meta.get(kind) or {}).items():
            for err in label_key_errors(key):
                bad(f"metadata.{kind}", "FieldValueInvalid", f'Invalid value: "{key}": {err}')
            if kind == "labels":
                for err in label_value_errors(value):
                    bad("metadata.labels", "FieldValueInvalid", f'Invalid value: "{value}": {err}')
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        bad("spec.containers", "FieldValueRequired", "Required value")
    if len(containers) > 1 or spec.get("initContainers"):
        bad("spec.containers", "FieldValueNotSupported", "the fake API server runs single-container pods only")
    for i, c in enumerate(containers):
        path = f"spec.containers[{i}]"
        if not DNS1123_LABEL.match(c.get("name") or ""):
            bad(f"{path}.name", "FieldValueInvalid", f'Invalid value: "{c.get("name", "")}": a DNS-1123 label')
        if not c.get("image"):
            bad(f"{path}.image", "FieldValueRequired", "Required value")
        causes.extend(_resource_causes(path, c.get("resources") or {}))
        for j, env in enumerate(c.get("env") or []):
            if not env.get("name"):
                bad(f"{path}.env[{j}].name", "FieldValueRequired", "Required value")
    if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
        bad("spec.restartPolicy", "FieldValueNotSupported", 'supported values: "Always", "Never", "OnFailure"')
    return causes


def _resource_causes(path: str, resources: Mapping[str, Any]) -> list[dict[str, str]]:
    causes = []
    parsed: dict[str, dict[str, Decimal]] = {}
    for kind in ("requests", "limits"):
        parsed[kind] = {}
        for resource, value in (resources.get(kind) or {}).items():
            try:
                parsed[kind][resource] = parse_quantity(str(value))
            except ValueError:
                causes.append(
                    {
                        "field": f"{path}.resources.{kind}[{resource}]",
                        "reason": "FieldValueInvalid",
                        "message": f'Invalid value: "{value}": quantities must match the regular expression',
                    }
                )
    for resource, request in parsed["requests"].items():
        limit = parsed["limits"].get(resource)
        if limit is not None and request > limit:
            causes.append(
                {
                    "field": f"{path}.resources.requests",
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: must be less than or equal to {resource} limit",
                }
            )
    return causes


def qos_class(containers: list[Mapping[str, Any]]) -> str:
    requests: list[Mapping[str, Any]] = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits: list[Mapping[str, Any]] = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    for req, lim in zip(requests, limits, strict=True):
        for resource in ("cpu", "memory"):
            if resource not in lim or parse_quantity(str(req.get(resource, lim[resource]))) != parse_quantity(
                str(lim[resource])
            ):
                return "Burstable"
    return "Guaranteed"


# --- selectors --------------------------------------------------------------------------------

Matcher = Callable[[Mapping[str, str]], bool]


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_SET_TERM = re.compile(r"^(\S+)\s+(in|notin)\s*\(([^()]*)\)$")
_EQ_TERM = re.compile(r"^([^!=\s]+)\s*(==|!=|=)\s*(\S*)$")


def _checked_key(key: str, selector: str) -> str:
    if label_key_errors(key):
        raise ApiError(400, "BadRequest", f"unable to parse requirement: invalid label key {key!r} in {selector!r}")
    return key


def _checked_value(value: str, selector: str) -> str:
    if label_value_errors(value):
        raise ApiError(400, "BadRequest", f"unable to parse requirement: invalid label value {value!r} in {selector!r}")
    return value


def label_selector(selector: str) -> Matcher:
    """Parse a label selector: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-joined (AND)."""
    checks: list[Matcher] = []
    for term in _split_top(selector):
        if m := _SET_TERM.match(term):
            key = _checked_key(m.group(1), selector)
            values = {_checked_value(v.strip(), selector) for v in m.group(3).split(",") if v.strip()}
            if not values:
                raise ApiError(400, "BadRequest", f"unable to parse requirement: empty set in {selector!r}")
            if m.group(2) == "in":
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)  # type: ignore[misc]
            else:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)  # type: ignore[misc]
        elif m := _EQ_TERM.match(term):
            key, op, value = _checked_key(m.group(1), selector), m.group(2), _checked_value(m.group(3), selector)
            if op == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)  # type: ignore[misc]
            else:
                checks.append(lambda labels, k=key, v=value: k in labels and labels[k] == v)  # type: ignore[misc]
        elif term.startswith("!"):
            key = _checked_key(term[1:].strip(), selector)
            checks.append(lambda labels, k=key: k not in labels)  # type: ignore[misc]
        else:
            key = _checked_key(term, selector)
            checks.append(lambda labels, k=key: k in labels)  # type: ignore[misc]
    return lambda labels: all(check(labels) for check in checks)


POD_FIELDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "metadata.name": lambda p: p["metadata"].get("name", ""),
    "metadata.namespace": lambda p: p["metadata"].get("namespace", ""),
    "spec.nodeName": lambda p: p["spec"].get("nodeName", ""),
    "spec.restartPolicy": lambda p: p["spec"].get("restartPolicy", ""),
    "spec.schedulerName": lambda p: p["spec"].get("schedulerName", ""),
    "spec.serviceAccountName": lambda p: p["spec"].get("serviceAccountName", ""),
    "status.phase": lambda p: p["status"].get("phase", ""),
    "status.podIP": lambda p: p["status"].get("podIP", ""),
    "status.nominatedNodeName": lambda p: p["status"].get("nominatedNodeName", ""),
}


def field_selector(selector: str) -> Callable[[Mapping[str, Any]], bool]:
    """Parse a pod field selector: `field=v`, `field==v`, `field!=v` over the fields pods support."""
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for term in _split_top(selector):
        m = _EQ_TERM.match(term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        field, op, value = m.groups()
        getter = POD_FIELDS.get(field)
        if getter is None:
            raise ApiError(400, "BadRequest", f'field label not supported: "{field}"')
        if op == "!=":
            checks.append(lambda pod, g=getter, v=value: g(pod) != v)  # type: ignore[misc]
        else:
            checks.append(lambda pod, g=getter, v=value: g(pod) == v)  # type: ignore[misc]
    return lambda pod: all(check(pod) for check in checks)
