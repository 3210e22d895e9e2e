"""What every service agrees on about dynamic task mapping (docs/adr/0007-dynamic-task-mapping.md).

A mapped task (`.partial(...).expand(...)`) has one task instance per combination of its
mapped arguments' items, keyed by `map_index` 0, 1, ...; an unmapped task has one instance with
map_index -1, and so does a mapped task until the scheduler expands it (when its upstream tasks
are done, so an upstream XCom's length is known).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Protocol

NO_MAP_INDEX = -1
# The most instances one mapped task may expand to, unless the scheduler's settings say otherwise (Airflow's 1024).
DEFAULT_MAX_MAP_LENGTH = 1024


class _HasMapIndex(Protocol):
    def HasField(self, field_name: str) -> bool: ...

    @property
    def map_index(self) -> int: ...


def key_map_index(key: _HasMapIndex) -> int:
    """The map_index of a TaskTryKey message: absent means an unmapped task (-1)."""
    return int(key.map_index) if key.HasField("map_index") else NO_MAP_INDEX


def items_of(value: Any) -> list[Any] | None:
    """What a mapped argument maps over: a list or tuple as it is, a dict as its (key, value) pairs
    (Airflow's rule); None for anything else (a value that cannot be mapped over)."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, dict):
        return [(k, v) for k, v in value.items()]
    return None


def total_length(lengths: Sequence[int]) -> int:
    """How many instances mapping over arguments of these lengths makes: their product (every combination)."""
    return math.prod(lengths) if lengths else 0


def combination(lengths: Sequence[int], map_index: int) -> tuple[int, ...]:
    """The item of each mapped argument that instance `map_index` gets, in itertools.product order
    (the last argument varies fastest), as Airflow numbers them."""
    if not 0 <= map_index < total_length(lengths):
        raise IndexError(f"map_index {map_index} is outside 0..{total_length(lengths) - 1}")
    picks: list[int] = []
    for length in reversed(lengths):
        map_index, pick = divmod(map_index, length)
        picks.append(pick)
    return tuple(reversed(picks))


def all_combinations(lengths: Sequence[int]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(n) for n in lengths)))
