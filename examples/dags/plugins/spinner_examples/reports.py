"""Helpers the example DAGs share."""

from __future__ import annotations

from typing import Any


def summarize(numbers: list[int]) -> dict[str, Any]:
    """A tiny 'report' computed by a Python task."""
    return {"count": len(numbers), "total": sum(numbers), "max": max(numbers) if numbers else None}


DEFAULT_ARGS: dict[str, Any] = {"owner": "data-eng", "retries": 1}
