"""`>>` and `<<` for everything that can be linked: tasks, task groups, XComArgs.

Each defines set_downstream / set_upstream; this mixin turns the shift operators into them,
so `a >> b`, `[a, b] >> c` and `a << b` mean the same for every kind.
"""

from __future__ import annotations

from typing import Any, Self


class DependencyMixin:
    def set_downstream(self, other: Any) -> None:
        raise NotImplementedError

    def set_upstream(self, other: Any) -> None:
        raise NotImplementedError

    def __rshift__(self, other: Any) -> Any:
        """self >> other."""
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        """self << other."""
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> Self:
        """[a, b] >> self."""
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> Self:
        """[a, b] << self."""
        self.set_downstream(other)
        return self
