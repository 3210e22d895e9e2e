"""The OpenAPI document describes every /api/v1 route, and a fuzz run of the API from it never gets a 5xx.

The fuzz runs against a whole Spinner (a real scheduler holds the partition, tries succeed at
once), so actions on a real DAG reach the scheduler instead of stopping at "no scheduler".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from starlette.routing import Route

from gateway.app import API, routes
from gateway.openapi import document

from .conftest import Site
from .live import Live, live_spinner

SCHEMA = schemathesis.openapi.from_dict(document())
pytestmark = pytest.mark.xdist_group("openapi")  # the module's Spinner starts on one worker only


def test_every_api_route_is_documented_with_its_methods() -> None:
    paths = document()["paths"]
    for route in routes():
        assert isinstance(route, Route)
        if not route.path.startswith(API):
            continue
        path = route.path[len(API) :]
        assert path in paths, f"{route.path} is not in the OpenAPI document"
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in paths[path], f"{method} {route.path} is not documented"
    for path, ops in paths.items():
        for method, op in ops.items():
            if method != "parameters":
                assert "401" in op["responses"] or op.get("security") == [], f"{method} {path}: no 401 documented"


async def test_the_gateway_serves_the_document_without_authentication(site: Site) -> None:
    r = await site.client_for(None).get("/api/v1/openapi.json")
    assert r.status_code == 200
    body = r.json()
    assert body["openapi"].startswith("3.") and body["servers"] == [{"url": "/api/v1"}]
    assert "/dags/{dag_id}/runs" in body["paths"]
    assert body["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_spinner(Path(tmp_path_factory.mktemp("fuzz"))) as spinner:
        spinner.user("reader-1", ["reader"], "reader-password-1")
        yield spinner


# One test per API operation, with its label as the test id: schemathesis's own parametrize gives all
# 44 the same node id, and the suite's workers (pytest-xdist) ran one of them and dropped 43 silently.
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


# The Spinner under test runs in this process, in another thread, and its services draw from the
# `random` module while Hypothesis generates a case: Hypothesis sees the global random state move
# and blames the strategy. Not this test's strategies: that warning alone is ignored.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("who", ["admin", "reader-1"])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_fuzzed_requests_never_get_a_5xx(operation: str, who: str, live: Live) -> None:
    """As the admin, whom every operation lets in, and as a reader, whom most refuse."""
    token = live.admin_token if who == "admin" else live.tokens[who]

    @given(case=OPERATIONS[operation].as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def fuzz(case: schemathesis.Case) -> None:
        check(case, live, token)

    fuzz()


def check(case: schemathesis.Case, live: Live, token: str) -> None:
    # Real DAG and run ids now and then, so the fuzz reaches past "not found" into the actions.
    if case.path_parameters and "dag_id" in case.path_parameters and hash(str(case.body)) % 3 == 0:
        case.path_parameters["dag_id"] = "tutorial"
    response = case.call(base_url=live.url + "/api/v1", headers={"authorization": f"Bearer {token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"]
