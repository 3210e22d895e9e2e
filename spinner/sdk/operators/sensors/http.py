"""HttpSensor: waits until an HTTP endpoint answers as expected."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spinner.sdk.exceptions import DagDefinitionError
from spinner.sdk.operators.sensors._log import say
from spinner.sdk.operators.sensors.base import BaseSensorOperator

if TYPE_CHECKING:
    import httpx


class HttpSensor(BaseSensorOperator):
    """Pokes `endpoint` (a URL, or a path joined to `base_url`) with `method`. Without a
    `response_check` a 2xx answer succeeds and anything else (or a connection error) means "not
    yet"; with one, the poke is `response_check(response)` on any answer, and a non-2xx answer is
    "not yet" too. `endpoint`, `request_params` and `headers` are templated."""

    template_fields = ("endpoint", "request_params", "headers")

    def __init__(
        self,
        task_id: str,
        endpoint: str,
        base_url: str | None = None,
        method: str = "GET",
        request_params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        response_check: Callable[..., bool] | None = None,
        request_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id, **kwargs)
        where = f"DAG '{self.dag.dag_id if self.dag else '?'}', task '{task_id}'"
        if not isinstance(endpoint, str) or not endpoint:
            raise DagDefinitionError(f"{where}: endpoint must be a URL or a path")
        if base_url is None and not endpoint.startswith(("http://", "https://", "{{")):
            raise DagDefinitionError(f"{where}: endpoint {endpoint!r} is not an http(s) URL; give base_url")
        if response_check is not None and not callable(response_check):
            raise DagDefinitionError(f"{where}: response_check must be callable")
        self.endpoint = endpoint
        self.base_url = base_url
        self.method = method.upper()
        self.request_params = dict(request_params or {})
        self.headers = dict(headers or {})
        self.response_check = response_check
        self.request_timeout = float(request_timeout)

    def url(self) -> str:
        if self.base_url is None or self.endpoint.startswith(("http://", "https://")):
            return self.endpoint
        return self.base_url.rstrip("/") + "/" + self.endpoint.lstrip("/")

    def poke(self, context: dict[str, Any]) -> bool:
        import httpx  # task time only: DAG files load without it

        url = self.url()
        params = self.request_params if self.method == "GET" else None
        body = self.request_params if self.method != "GET" and self.request_params else None
        try:
            with httpx.Client(timeout=self.request_timeout, follow_redirects=True) as client:
                response = client.request(self.method, url, params=params, json=body, headers=self.headers)
        except httpx.TransportError as e:
            say(f"{self.method} {url}: {type(e).__name__}: {e}; not yet")
            return False
        say(f"{self.method} {url}: {response.status_code}")
        if not response.is_success:
            return False
        if self.response_check is not None:
            return bool(_call_check(self.response_check, response, context))
        return True


def _call_check(check: Callable[..., bool], response: httpx.Response, context: dict[str, Any]) -> bool:
    import inspect

    parameters = inspect.signature(check).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    extra = {k: v for k, v in context.items() if takes_all or (k in parameters and k != "response")}
    return bool(check(response, **extra))
