"""Params: a DAG's typed run arguments (Airflow's Param), validated with JSON Schema when a run is triggered.

`params={"days": Param(7, type="integer", minimum=1)}` on a DAG (or a task) gives templates
`{{ params.days }}` and a trigger form; a trigger whose conf breaks a param's schema is refused
with the param's name and why, before anything is created. Plain values (`params={"x": 1}`)
stay plain: no schema, any conf value accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

from spinner.sdk.exceptions import DagDefinitionError


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NotSet()


class ParamValidationError(ValueError):
    """A value breaks a param's schema, or a required param has no value. The message names the param."""


class Param:
    """A run argument with a default and a JSON Schema (type, enum, minimum, maximum, pattern, ...).

    `description` and `title` are shown in the trigger form; every other keyword is a JSON Schema
    keyword. A param without a default is required: a trigger must give it in its conf.
    """

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any) -> None:
        self.value = default
        self.description = description
        self.schema: dict[str, Any] = dict(schema)
        if description is not None:
            self.schema.setdefault("description", description)
        try:
            jsonschema.validators.validator_for(self.schema).check_schema(self.schema)
        except jsonschema.SchemaError as e:
            raise ValueError(f"invalid JSON schema: {e.message}") from None

    @property
    def has_value(self) -> bool:
        return self.value is not NOTSET

    def resolve(self, name: str, value: Any = NOTSET) -> Any:
        """The param's value (the given one, else its default), validated; ParamValidationError if not."""
        final = self.value if value is NOTSET else value
        if final is NOTSET:
            raise ParamValidationError(f"param '{name}' is required: it has no default and no value was given")
        try:
            jsonschema.validate(final, self.schema, format_checker=jsonschema.FormatChecker())
        except jsonschema.ValidationError as e:
            where = "".join(f"[{p!r}]" for p in e.absolute_path)
            raise ParamValidationError(f"param '{name}'{where}: {e.message}") from None
        return final

    def dump(self) -> dict[str, Any]:
        """The JSON form (serialized DAGs, the DAG's API description)."""
        return {
            "__type": "param",
            "default": self.value if self.has_value else None,
            "has_default": self.has_value,
            "description": self.description,
            "schema": self.schema,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Param:
        schema = dict(data.get("schema") or {})
        schema.pop("description", None)
        default = data.get("default") if data.get("has_default", True) else NOTSET
        return cls(default, description=data.get("description"), **schema)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Param) and self.dump() == other.dump()

    def __hash__(self) -> int:
        return hash(repr(self.dump()))

    def __repr__(self) -> str:
        return f"Param({self.value!r}, schema={self.schema!r})"


def check_params(dag_id: str, params: Mapping[str, Any] | None, task_id: str | None = None) -> dict[str, Any]:
    """At DAG definition: every Param's default must fit its own schema."""
    result = dict(params or {})
    where = f"DAG '{dag_id}'" + (f", task '{task_id}'" if task_id else "")
    for name, param in result.items():
        if isinstance(param, Param) and param.has_value:
            try:
                json.dumps(param.value)
            except (TypeError, ValueError):
                raise DagDefinitionError(
                    f"{where}: the default of param '{name}' must be a JSON value (str, number, bool, list, dict, "
                    f"None), not {param.value!r}"
                ) from None
            try:
                param.resolve(name)
            except ParamValidationError as e:
                raise DagDefinitionError(f"{where}: the default of {e}") from None
    return result


def param_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as templates see them: each Param's default (params without one are left out)."""
    return {
        name: (p.value if isinstance(p, Param) else p)
        for name, p in params.items()
        if not (isinstance(p, Param) and not p.has_value)
    }


def validate_conf(params: Mapping[str, Any], conf: Mapping[str, Any]) -> dict[str, Any]:
    """The params a run gets: defaults filled in, conf values validated against each Param's schema.

    Raises ParamValidationError naming the first param that is missing or wrong. Conf keys that
    are no param are kept (a DAG may read dag_run.conf directly).
    """
    values = dict(conf)
    for name, param in params.items():
        if isinstance(param, Param):
            values[name] = param.resolve(name, conf.get(name, NOTSET))
        elif name not in values:
            values[name] = param
    return values
