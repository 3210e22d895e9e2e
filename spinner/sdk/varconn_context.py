"""`var` and `conn` in the task context: `{{ var.value.x }}`, `{{ var.json.x }}`, `{{ conn.x.host }}`.

Each lookup reads through Variable.get / BaseHook.get_connection when the template is rendered
(in the running task), never when the DAG is parsed. A missing one fails the render with its name.
"""

from __future__ import annotations

from typing import Any

from jinja2.exceptions import UndefinedError

from spinner.sdk.connections import Connection, ConnectionNotFound, get_connection
from spinner.sdk.variables import NOTSET, Variable


class _Variables:
    def __init__(self, deserialize_json: bool) -> None:
        self._json = deserialize_json

    def get(self, key: str, default_var: Any = NOTSET) -> Any:
        return Variable.get(key, default_var, deserialize_json=self._json)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)  # Jinja and copy probe dunders: not variables
        try:
            return Variable.get(key, deserialize_json=self._json)
        except KeyError:
            kind = "json" if self._json else "value"
            raise UndefinedError(f"Variable {key} does not exist (var.{kind}.{key})") from None

    __getitem__ = __getattr__

    def __repr__(self) -> str:
        return "<variables>"


class VariableAccessor:
    """`var`: `var.value.<key>` is the text, `var.json.<key>` the parsed JSON; `.get(key, default)` too."""

    def __init__(self) -> None:
        self.value = _Variables(deserialize_json=False)
        self.json = _Variables(deserialize_json=True)

    def __repr__(self) -> str:
        return "<var>"


class ConnectionAccessor:
    """`conn`: `conn.<conn_id>` is the Connection (`conn.x.host`, `conn.x.get_uri()`); `.get(conn_id)` too."""

    def get(self, conn_id: str, default: Any = None) -> Connection | Any:
        try:
            return get_connection(conn_id)
        except ConnectionNotFound:
            return default

    def __getattr__(self, conn_id: str) -> Connection:
        if conn_id.startswith("_"):
            raise AttributeError(conn_id)
        try:
            return get_connection(conn_id)
        except ConnectionNotFound as e:
            raise UndefinedError(f"{e} (conn.{conn_id})") from None

    __getitem__ = __getattr__

    def __repr__(self) -> str:
        return "<conn>"


def varconn_context() -> dict[str, Any]:
    """What build_context adds: `var` and `conn`."""
    return {"var": VariableAccessor(), "conn": ConnectionAccessor()}
