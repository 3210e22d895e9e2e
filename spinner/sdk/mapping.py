"""Dynamic task mapping in DAG files: `.partial(...).expand(...)` (docs/adr/0007-dynamic-task-mapping.md).

    BashOperator.partial(task_id="load", retries=2).expand(bash_command=["load a", "load b"])
    add.partial(y=1).expand(x=[1, 2, 3])           # a @task function
    process.expand(path=list_files())              # over an upstream task's XCom (a list)

The task is built once, as a normal operator whose mapped arguments hold `MappedArgument`
placeholders; `expand_input` says what each maps over. The scheduler makes one task instance per
combination of the arguments' items when the task's upstream tasks are done (`map_index` 0, 1,
..., in itertools.product order), and each instance's runner puts its own items in place of the
placeholders before the task's fields are rendered (`materialize`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spinner.mapping import NO_MAP_INDEX, combination, items_of
from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.xcom_arg import Resolvable, XComArg

if TYPE_CHECKING:
    from spinner.sdk.operators.base import BaseOperator

# Task arguments that say what the task is, not what it works on: never mapped.
_NOT_MAPPABLE = frozenset({"task_id", "dag", "task_group", "trigger_rule", "pool", "retries", "priority_weight"})


@dataclass
class ExpandInput:
    """The mapped arguments of one task, in the order given: name -> a literal list, tuple or dict,
    or an XComArg of an upstream task. `in_kwargs`: the names are keys of the operator's op_kwargs
    (a @task function's arguments) rather than operator attributes."""

    values: dict[str, Any]
    in_kwargs: bool = False
    _resolved: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict, repr=False)

    def serialize(self) -> list[dict[str, Any]]:
        """What the scheduler needs to expand: each argument's length, or the XCom it maps over."""
        out: list[dict[str, Any]] = []
        for name, value in self.values.items():
            if isinstance(value, XComArg):
                out.append({"name": name, "task_id": value.operator.task_id, "key": value.key})
            else:
                out.append({"name": name, "length": len(items_of(value) or [])})
        return out

    def items(self, context: dict[str, Any]) -> dict[str, list[Any]]:
        """Each argument's items in this run (an XComArg pulled through the try's task instance)."""
        out: dict[str, list[Any]] = {}
        for name, value in self.values.items():
            source = value.resolve(context) if isinstance(value, XComArg) else value
            items = items_of(source)
            if items is None:
                where = f"the XCom '{value.key}' of task '{value.task_id}'" if isinstance(value, XComArg) else "it"
                raise TypeError(f"mapped argument '{name}': {where} is {type(source).__name__}, not a list or dict")
            out[name] = items
        return out

    def values_for(self, context: dict[str, Any]) -> dict[str, Any]:
        """The items of instance `context["ti"].map_index`: name -> its item."""
        ti = context["ti"]
        map_index = int(getattr(ti, "map_index", NO_MAP_INDEX))
        cached = self._resolved.get((id(ti), map_index))
        if cached is not None:
            return cached
        if map_index < 0:
            raise RuntimeError("a mapped task's instance runs with a map_index; this one has none")
        items = self.items(context)
        picks = combination([len(v) for v in items.values()], map_index)
        values = {name: items[name][pick] for name, pick in zip(items, picks, strict=True)}
        self._resolved[(id(ti), map_index)] = values
        return values


class MappedArgument(Resolvable):
    """Stands for a mapped argument in the built task until its instance runs."""

    def __init__(self, expand_input: ExpandInput, name: str) -> None:
        self.expand_input = expand_input
        self.name = name

    def resolve(self, context: dict[str, Any]) -> Any:
        return self.expand_input.values_for(context)[self.name]

    def __repr__(self) -> str:  # stable: templated fields are part of the serialized DAG (and its hash)
        value = self.expand_input.values[self.name]
        source = repr(value) if isinstance(value, XComArg) else f"{type(value).__name__} of {len(value)}"
        return f"MappedArgument({self.name!r}, {source})"


def check_expand(where: str, mapped: dict[str, Any], partial: dict[str, Any], accepted: frozenset[str]) -> None:
    """The authoring errors of `.expand(...)`: no input, a name given twice, unknown or unmappable, a bad value."""
    if not mapped:
        raise DagDefinitionError(
            f"{where}: .expand() needs at least one argument to map over, as `.expand(x=[1, 2, 3])` "
            "(a mapped task with no input)"
        )
    both = sorted(set(mapped) & set(partial))
    if both:
        raise DagDefinitionError(f"{where}: {', '.join(both)} given to both .partial() and .expand()")
    for name, value in mapped.items():
        if name in _NOT_MAPPABLE:
            raise DagDefinitionError(f"{where}: '{name}' cannot be mapped; give it to .partial()")
        if name not in accepted:
            raise DagDefinitionError(
                f"{where}: .expand() got '{name}', which the task does not take; it takes {', '.join(sorted(accepted))}"
            )
        if not isinstance(value, XComArg) and items_of(value) is None:
            raise DagDefinitionError(
                f"{where}: .expand({name}=...) maps over a list, a tuple, a dict or an upstream task's output "
                f"(an XComArg), not {type(value).__name__} {value!r}"
            )


def link_inputs(task: BaseOperator, expand_input: ExpandInput) -> None:
    """A task mapped over an XComArg runs after the task that pushes it."""
    for value in expand_input.values.values():
        if isinstance(value, XComArg):
            if value.operator is task:
                raise DagDefinitionError(f"task '{task.task_id}': maps over its own output")
            value.operator.set_downstream(task)


def materialize(task: BaseOperator, context: dict[str, Any]) -> None:
    """Puts this instance's items in place of a mapped task's placeholders, before rendering (the runner)."""
    expand_input: ExpandInput | None = getattr(task, "expand_input", None)
    if expand_input is None:
        return
    values = expand_input.values_for(context)
    if expand_input.in_kwargs:
        kwargs: dict[str, Any] = getattr(task, "op_kwargs")  # noqa: B009
        kwargs.update(values)
    else:
        for name, value in values.items():
            setattr(task, name, value)


class OperatorPartial:
    """`SomeOperator.partial(task_id=..., **fixed)`: becomes a mapped task with `.expand(**mapped)`."""

    def __init__(
        self,
        build: Callable[[dict[str, MappedArgument], ExpandInput], Any],
        name: str,
        kwargs: dict[str, Any],
        accepted: frozenset[str],
        *,
        in_kwargs: bool = False,
    ) -> None:
        self._build = build
        self._in_kwargs = in_kwargs
        self._name = name
        self._kwargs = kwargs
        self._accepted = accepted
        self._used = False

    def expand(self, **mapped: Any) -> Any:
        if self._used:
            raise DagDefinitionError(f"{self._name}: .expand() was called twice on one .partial()")
        self._used = True
        check_expand(self._name, mapped, self._kwargs, self._accepted)
        expand_input = ExpandInput(dict(mapped), in_kwargs=self._in_kwargs)
        return self._build({name: MappedArgument(expand_input, name) for name in mapped}, expand_input)

    def __repr__(self) -> str:
        return f"<partial {self._name}>"
