"""Pytest fixtures for the fakes, registered for the whole suite in tests/conftest.py.

- `fake_kubernetes`: a started `FakeKubernetes` (any namespace exists), closed after the test.
- `kubeconfig`: a kubeconfig file pointing at it.
- `kube_api`: a real `kubernetes_asyncio.client.ApiClient` loaded from that kubeconfig.
- `fake_elasticsearch`: a started `FakeElasticsearch`, closed after the test.
- `es_client`: a real `elasticsearch.AsyncElasticsearch` for it (no retries, short timeouts).
- `moto`: moto's S3 server over HTTP on a free port (tests/fakes/s3.py), with test credentials.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch
from kubernetes_asyncio import client, config

from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.kubernetes import FakeKubernetes
from tests.fakes.s3 import Moto, free_port


@pytest.fixture
def fake_kubernetes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeKubernetes]:
    with FakeKubernetes(tmp_path_factory.mktemp("fake-k8s")) as k8s:
        yield k8s


@pytest.fixture
def kubeconfig(fake_kubernetes: FakeKubernetes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_kubernetes.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture
async def kube_api(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def fake_elasticsearch() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch() as es:
        yield es


@pytest.fixture
async def es_client(fake_elasticsearch: FakeElasticsearch) -> AsyncIterator[AsyncElasticsearch]:
    async with AsyncElasticsearch(fake_elasticsearch.url, max_retries=0, request_timeout=5) as es:
        yield es


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = Moto(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
