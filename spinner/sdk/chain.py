"""chain() and cross_downstream(): dependencies for many tasks at once (Airflow's helpers)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from spinner.sdk.exceptions import DagDefinitionError


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def chain(*elements: Any) -> None:
    """chain(a, b, [c, d], e): a >> b >> [c, d] >> e. Two lists side by side are linked pairwise
    (chain([a, b], [c, d]) is a >> c and b >> d) and must have the same length."""
    for up, down in itertools.pairwise(elements):
        if _is_list(up) and _is_list(down):
            if len(up) != len(down):
                raise DagDefinitionError(
                    f"chain(): lists side by side must have the same length, got {len(up)} and {len(down)}"
                )
            for a, b in zip(up, down, strict=True):
                a.set_downstream(b)
        elif _is_list(up):
            for a in up:
                a.set_downstream(down)
        else:
            up.set_downstream(down)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Any) -> None:
    """Every task of from_tasks upstream of every task of to_tasks."""
    for task in from_tasks:
        task.set_downstream(to_tasks)
