"""The Elasticsearch test double, driven through the official async client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError as EsApiError
from elasticsearch import AsyncElasticsearch, NotFoundError, UnsupportedProductError
from elasticsearch.helpers import async_bulk

from tests.fakes.elasticsearch import FakeElasticsearch

INDEX = "spinner-logs-2026.11.24"


def line(i: int, *, task: str = "extract", try_number: int = 1, section: str = "task") -> dict[str, Any]:
    return {
        "dag_id": "etl",
        "task_id": task,
        "run_id": "manual__1",
        "try_number": try_number,
        "offset": i,
        "timestamp": f"2026-11-24T10:00:{i % 60:02d}.000Z",
        "section": section,
        "level": "INFO",
        "message": f"line {i} of {task}",
    }


def bulk_body(docs: list[dict[str, Any]], index: str = INDEX, op: str = "create") -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = []
    for doc in docs:
        body += [{op: {"_index": index}}, doc]
    return body


KEYWORD_MAPPING = {
    "properties": {
        "dag_id": {"type": "keyword"},
        "task_id": {"type": "keyword"},
        "run_id": {"type": "keyword"},
        "try_number": {"type": "integer"},
        "offset": {"type": "long"},
        "timestamp": {"type": "date"},
        "section": {"type": "keyword"},
        "level": {"type": "keyword"},
        "message": {"type": "text"},
    }
}


async def test_info_and_product_header_check_passes(es_client: AsyncElasticsearch) -> None:
    info = await es_client.info()
    assert info["version"]["number"].startswith("9.") and info["tagline"] == "You Know, for Search"
    assert info.meta.headers["x-elastic-product"] == "Elasticsearch"
    assert info.meta.headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=9"
    assert await es_client.ping()


async def test_a_server_without_the_product_header_is_refused(fake_elasticsearch: FakeElasticsearch) -> None:
    fake_elasticsearch.without_product_header()
    async with AsyncElasticsearch(fake_elasticsearch.url, max_retries=0) as es:
        with pytest.raises(UnsupportedProductError):
            await es.info()


async def test_bulk_then_search_sorted_with_search_after(es_client: AsyncElasticsearch) -> None:
    await es_client.indices.create(index=INDEX, mappings=KEYWORD_MAPPING)
    docs = [line(i) for i in range(25)] + [line(i, task="load") for i in range(5)]
    reply = await es_client.bulk(operations=bulk_body(docs), refresh=True)
    assert reply["errors"] is False and len(reply["items"]) == 30
    first = reply["items"][0]["create"]
    assert first["status"] == 201 and first["result"] == "created" and first["_index"] == INDEX and first["_id"]

    query = {
        "bool": {"filter": [{"term": {"dag_id": "etl"}}, {"term": {"task_id": "extract"}}, {"term": {"try_number": 1}}]}
    }
    seen: list[int] = []
    after = None
    while True:
        page = await es_client.search(
            index="spinner-logs-*", query=query, sort=[{"offset": "asc"}], size=10, search_after=after
        )
        hits = page["hits"]["hits"]
        if not hits:
            break
        seen += [h["_source"]["offset"] for h in hits]
        after = hits[-1]["sort"]
    assert seen == list(range(25))
    assert page["hits"]["total"] == {"value": 25, "relation": "eq"}

    ranged = await es_client.search(
        index=INDEX,
        query={"bool": {"filter": [{"range": {"offset": {"gte": 20, "lt": 23}}}, {"term": {"task_id": "extract"}}]}},
        sort=[{"offset": {"order": "desc"}}],
    )
    assert [h["_source"]["offset"] for h in ranged["hits"]["hits"]] == [22, 21, 20]
    by_time = await es_client.search(
        index=INDEX,
        query={"range": {"timestamp": {"gte": "2026-11-24T10:00:03Z"}}},
        sort=["timestamp", "offset"],
        size=1,
    )
    assert by_time["hits"]["hits"][0]["sort"][0] == 1795514403000  # dates sort as epoch millis
    must_not = await es_client.count(index=INDEX, query={"bool": {"must_not": [{"term": {"task_id": "extract"}}]}})
    assert must_not["count"] == 5


async def test_writes_are_searchable_after_a_refresh(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    fake_elasticsearch.refresh_interval = None
    await es_client.bulk(operations=bulk_body([line(0)]))
    assert (await es_client.search(index=INDEX))["hits"]["total"]["value"] == 0
    await es_client.indices.refresh(index="spinner-logs-*")
    assert (await es_client.search(index=INDEX))["hits"]["total"]["value"] == 1


async def test_dynamic_mapping_makes_strings_text_with_a_keyword_subfield(es_client: AsyncElasticsearch) -> None:
    await es_client.bulk(operations=bulk_body([line(1), line(2, task="load")]), refresh="wait_for")
    exact = await es_client.search(index=INDEX, query={"term": {"task_id.keyword": "load"}})
    assert [h["_source"]["offset"] for h in exact["hits"]["hits"]] == [2]
    with pytest.raises(EsApiError) as e:
        await es_client.search(index=INDEX, sort=[{"task_id": "asc"}])
    assert e.value.status_code == 400 and "Text fields are not optimised" in str(e.value.body)
    with pytest.raises(EsApiError) as e:
        await es_client.search(index=INDEX, sort=[{"no_such_field": "asc"}])
    assert e.value.status_code == 400
    fine = await es_client.search(index=INDEX, sort=[{"no_such_field": {"order": "asc", "unmapped_type": "long"}}])
    assert len(fine["hits"]["hits"]) == 2


async def test_bulk_item_errors(es_client: AsyncElasticsearch) -> None:
    await es_client.indices.create(index=INDEX, mappings=KEYWORD_MAPPING)
    ops = [
        {"create": {"_index": INDEX, "_id": "a"}}, line(0),
        {"create": {"_index": INDEX, "_id": "a"}}, line(1),
        {"index": {"_index": INDEX, "_id": "b"}}, {**line(2), "offset": "not a number"},
        {"index": {"_index": "Bad-Name"}}, line(3),
    ]  # fmt: skip
    reply = await es_client.bulk(operations=ops)
    assert reply["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in reply["items"]]
    assert statuses == [201, 409, 400, 400]
    errors = [next(iter(item.values())).get("error", {}).get("type") for item in reply["items"]]
    assert errors == [
        None,
        "version_conflict_engine_exception",
        "document_parsing_exception",
        "invalid_index_name_exception",
    ]


async def test_logs_data_streams_need_create_and_a_timestamp(es_client: AsyncElasticsearch) -> None:
    stream = "logs-spinner-default"
    doc = {**line(0), "@timestamp": "2026-11-24T10:00:00Z"}
    reply = await es_client.bulk(
        operations=[
            {"index": {"_index": stream}},
            doc,
            {"create": {"_index": stream}},
            line(1),
            {"create": {"_index": stream}},
            doc,
        ],
        refresh=True,
    )
    assert [next(iter(i.values()))["status"] for i in reply["items"]] == [400, 400, 201]
    found = await es_client.search(index="logs-*", query={"term": {"task_id": "extract"}})
    assert found["hits"]["hits"][0]["_index"].startswith(".ds-logs-spinner-default-")


async def test_index_patterns_and_missing_indices(es_client: AsyncElasticsearch) -> None:
    await es_client.bulk(operations=bulk_body([line(0)], "app-a") + bulk_body([line(1)], "app-b"), refresh=True)
    both = await es_client.search(index="app-*")
    assert both["hits"]["total"]["value"] == 2
    one = await es_client.search(index="app-*,-app-b")
    assert [h["_index"] for h in one["hits"]["hits"]] == ["app-a"]
    assert (await es_client.search(index="nothing-*"))["hits"]["total"]["value"] == 0
    with pytest.raises(NotFoundError):
        await es_client.search(index="nothing")


async def test_helpers_async_bulk_works(es_client: AsyncElasticsearch) -> None:
    actions = ({"_op_type": "create", "_index": INDEX, "_source": line(i)} for i in range(1200))
    ok, errors = await async_bulk(es_client, actions, chunk_size=500, refresh=True)
    assert (ok, errors) == (1200, [])
    assert (await es_client.count(index=INDEX))["count"] == 1200


async def test_outage_connection_refused_then_back(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    await es_client.bulk(operations=bulk_body([line(0)]), refresh=True)
    await asyncio.to_thread(fake_elasticsearch.stop)
    with pytest.raises(TransportConnectionError):
        await es_client.info()
    await asyncio.to_thread(fake_elasticsearch.start)
    assert (await es_client.count(index=INDEX))["count"] == 1  # the data survived


async def test_unavailable_and_rejected_statuses(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    fake_elasticsearch.unavailable(503)
    with pytest.raises(EsApiError) as e:
        await es_client.bulk(operations=bulk_body([line(0)]))
    assert e.value.status_code == 503 and e.value.error == "cluster_block_exception"
    fake_elasticsearch.unavailable(429)
    with pytest.raises(EsApiError) as e:
        await es_client.search(index=INDEX)
    assert e.value.status_code == 429
    fake_elasticsearch.healthy()
    fake_elasticsearch.reject_bulk_items(1)
    reply = await es_client.bulk(operations=bulk_body([line(0), line(1)]))
    assert [next(iter(i.values()))["status"] for i in reply["items"]] == [429, 201]


async def test_slow_server_times_out_the_client_and_recovers(fake_elasticsearch: FakeElasticsearch) -> None:
    fake_elasticsearch.slow(1.0)
    async with AsyncElasticsearch(fake_elasticsearch.url, max_retries=0, request_timeout=0.2) as es:
        started = time.monotonic()
        with pytest.raises(ConnectionTimeout):
            await es.info()
        assert time.monotonic() - started < 0.9
        fake_elasticsearch.healthy()
        assert (await es.info())["tagline"] == "You Know, for Search"


async def test_single_document_api(es_client: AsyncElasticsearch, fake_elasticsearch: FakeElasticsearch) -> None:
    await es_client.index(index=INDEX, id="x", document=line(7))
    got = await es_client.get(index=INDEX, id="x")
    assert got["_source"]["offset"] == 7 and got["_version"] == 1
    assert fake_elasticsearch.documents("spinner-*") == [line(7)]


async def test_an_unsupported_compatibility_version_is_refused(fake_elasticsearch: FakeElasticsearch) -> None:
    import aiohttp

    headers = {"Accept": "application/vnd.elasticsearch+json; compatible-with=7"}
    async with aiohttp.ClientSession() as http, http.get(fake_elasticsearch.url, headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "media_type_header_exception"
    async with aiohttp.ClientSession() as http, http.get(fake_elasticsearch.url) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
