"""spinner.logship against the Elasticsearch test double, through the real AsyncElasticsearch client."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import AsyncElasticsearch

from spinner.logship import LogId, LogShipper, install_index_template
from tests.fakes.elasticsearch import FakeElasticsearch

KEY = LogId(dag_id="etl", task_id="extract", run_id="manual__1", try_number=2)
PATTERN = "spinner-logs-%Y.%m.%d"
T0 = datetime(2026, 11, 24, 23, 59, 58, tzinfo=UTC)


def shipper(client: AsyncElasticsearch, **kw: object) -> LogShipper:
    options: dict[str, object] = {
        "index_pattern": PATTERN,
        "flush_interval": 0.05,
        "backoff": (0.05, 0.2),
        "request_timeout": 2.0,
        "drain_timeout": 3.0,
    }
    options.update(kw)
    return LogShipper(client, KEY, **options)  # type: ignore[arg-type]


def bulk_requests(es: FakeElasticsearch) -> int:
    return sum(1 for _, path in es.requests if path.startswith("/_bulk"))


async def test_ships_one_document_per_line_in_batches(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    async with shipper(es_client, batch_size=500) as ship:
        ship.put("checking S3", section="readiness", timestamp=T0)
        for i in range(1, 1200):
            ship.put(f"line {i}", level="WARNING" if i == 7 else "INFO", timestamp=T0)
    assert ship.stats.shipped == 1200 and ship.stats.dropped == 0
    assert bulk_requests(fake_elasticsearch) <= 4
    docs = fake_elasticsearch.documents("spinner-logs-*")
    assert len(docs) == 1200
    assert docs[0] == {
        "dag_id": "etl",
        "task_id": "extract",
        "run_id": "manual__1",
        "try_number": 2,
        "offset": 0,
        "timestamp": "2026-11-24T23:59:58Z",
        "@timestamp": "2026-11-24T23:59:58Z",
        "section": "readiness",
        "level": "INFO",
        "message": "checking S3",
    }
    assert sorted(d["offset"] for d in docs) == list(range(1200))
    assert fake_elasticsearch.indices() == ["spinner-logs-2026.11.24"]


async def test_index_by_day_and_reading_back_in_order(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    await install_index_template(es_client, PATTERN)
    async with shipper(es_client, batch_size=7) as ship:
        for i in range(20):
            ship.put(f"line {i}", timestamp=T0 + timedelta(seconds=i // 5))  # crosses midnight at i=10
    assert fake_elasticsearch.indices() == ["spinner-logs-2026.11.24", "spinner-logs-2026.11.25"]
    await es_client.indices.refresh(index="spinner-logs-*")
    query = {
        "bool": {
            "filter": [
                {"term": {"dag_id": "etl"}},
                {"term": {"task_id": "extract"}},
                {"term": {"run_id": "manual__1"}},
                {"term": {"try_number": 2}},
            ]
        }
    }
    offsets: list[int] = []
    after = None
    while page := (
        await es_client.search(
            index="spinner-logs-*", query=query, sort=[{"offset": "asc"}], size=6, search_after=after
        )
    )["hits"]["hits"]:
        offsets += [h["_source"]["offset"] for h in page]
        after = page[-1]["sort"]
    assert offsets == list(range(20))


async def test_put_never_waits_for_a_slow_elasticsearch(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    fake_elasticsearch.slow(1.0)
    ship = shipper(es_client, batch_size=10, request_timeout=0.3, drain_timeout=0.5)
    async with ship:
        started = time.monotonic()
        for i in range(2000):
            ship.put(f"line {i}")
        put_took = time.monotonic() - started
        await asyncio.sleep(0.1)
    assert put_took < 0.5
    assert ship.stats.shipped + ship.stats.dropped == 2000  # closing gave up within its drain timeout


async def test_an_absent_elasticsearch_drops_only_past_the_bound_and_counts(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(fake_elasticsearch.stop)
    caplog.set_level(logging.WARNING, logger="spinner.logship")
    async with shipper(es_client, max_buffered=100, batch_size=10) as ship:
        for i in range(50):
            ship.put(f"early {i}")
        await asyncio.sleep(0.2)  # a failed attempt or two
        assert ship.stats.dropped == 0 and ship.stats.failed_requests >= 1
        for i in range(50, 300):
            ship.put(f"line {i}")
        assert ship.stats.dropped >= 300 - 100 - 10  # past the bound (plus at most one batch in flight)
        dropping = [r for r in caplog.records if "buffer full" in r.getMessage()]
        assert len(dropping) == 1  # warned once per episode, not per line
        await asyncio.to_thread(fake_elasticsearch.start)
    assert ship.stats.dropped + ship.stats.shipped == 300
    shipped = sorted(d["offset"] for d in fake_elasticsearch.documents("spinner-logs-*"))
    assert len(shipped) == ship.stats.shipped >= 100
    assert shipped == list(range(300 - len(shipped), 300))  # the oldest went, the newest were kept


async def test_rejections_and_outages_are_retried_without_duplicates(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    fake_elasticsearch.reject_bulk_items(3)
    async with shipper(es_client, batch_size=5) as ship:
        for i in range(10):
            ship.put(f"line {i}")
        await asyncio.sleep(0.3)
        fake_elasticsearch.unavailable(503)
        for i in range(10, 20):
            ship.put(f"line {i}")
        await asyncio.sleep(0.3)
        fake_elasticsearch.healthy()
    assert ship.stats.shipped == 20 and ship.stats.failed_requests >= 1
    assert sorted(d["offset"] for d in fake_elasticsearch.documents("spinner-logs-*")) == list(range(20))


async def test_a_timed_out_batch_that_landed_is_not_written_twice(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    fake_elasticsearch.slow(0.4)
    async with shipper(es_client, request_timeout=0.2, batch_size=10) as ship:
        for i in range(10):
            ship.put(f"line {i}")
        await asyncio.sleep(0.5)  # the first attempt timed out on the client, then landed
        fake_elasticsearch.healthy()
    assert ship.stats.shipped == 10
    assert sorted(d["offset"] for d in fake_elasticsearch.documents("spinner-logs-*")) == list(range(10))


async def test_a_logs_data_stream_pattern_works(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    async with shipper(es_client, index_pattern="logs-spinner-%Y.%m.%d") as ship:
        ship.put("hello", timestamp=T0)
    assert ship.stats.shipped == 1 and ship.stats.rejected == 0
    assert fake_elasticsearch.indices()[0].startswith(".ds-logs-spinner-2026.11.24-")


async def test_lines_from_another_thread(fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch) -> None:
    async with shipper(es_client, batch_size=50) as ship:

        def write() -> None:
            for i in range(500):
                ship.put(f"line {i}")

        thread = threading.Thread(target=write)
        thread.start()
        await asyncio.to_thread(thread.join)
    assert ship.stats.shipped == 500
    assert sorted(d["offset"] for d in fake_elasticsearch.documents("spinner-logs-*")) == list(range(500))


async def test_lines_put_before_start_are_shipped_and_close_is_idempotent(
    fake_elasticsearch: FakeElasticsearch, es_client: AsyncElasticsearch
) -> None:
    ship = shipper(es_client)
    ship.put("early", timestamp=T0)
    async with ship:
        pass
    await ship.aclose()
    assert ship.stats.shipped == 1 and ship.buffered == 0
    assert [d["message"] for d in fake_elasticsearch.documents("spinner-logs-*")] == ["early"]
