"""The logs service's stores, each filled as the runner fills it: moto's S3 server over HTTP and the
Elasticsearch test double (tests/fakes/elasticsearch.py) through the official client. The pod
source and the whole path from a running task are in tests/integration/scheduler/test_task_logs.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import pytest
from elasticsearch import AsyncElasticsearch
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.logs.engine import ENDED_UNMARKED, LogNotFound, LogReader, LogUnavailable, TryStates
from services.logs.sources.base import LogChunk
from services.logs.sources.elasticsearch import ElasticsearchSource
from services.logs.sources.s3 import S3Source
from spinner.bundles import S3Location
from spinner.db.models import DagRun, TaskInstance
from spinner.logship import LogShipper
from spinner.tasklog import ArchiveMarker, LogId, archive_key, marker_key
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.s3 import Moto

KEY = LogId(dag_id="etl", task_id="load", run_id="scheduled__2026-11-01T00:00:00+00:00", try_number=2)
PATTERN = "spinner-logs-%Y.%m.%d"
LOG = [
    "::spinner-section::readiness",
    "[t] DAG file present",
    "::spinner-readiness::passed",
    "::spinner-section::task",
    *[f"row {i} loaded" for i in range(20)],
]


@pytest.fixture
def bucket(moto: Moto) -> S3Location:
    name = f"task-logs-{uuid.uuid4().hex[:12]}"  # moto's state outlives its server: a bucket per test
    boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return S3Location(bucket=name, prefix="logs", endpoint_url=moto.endpoint)


@pytest.fixture
async def es_source(fake_elasticsearch: FakeElasticsearch) -> AsyncIterator[ElasticsearchSource]:
    source = ElasticsearchSource([fake_elasticsearch.url], PATTERN)
    await source.prepare()
    try:
        yield source
    finally:
        await source.aclose()


async def ship(url: str, lines: list[str], *, skip: set[int] = frozenset(), end: bool) -> None:  # type: ignore[assignment]
    async with AsyncElasticsearch(url) as client:
        async with LogShipper(client, KEY, index_pattern=PATTERN, flush_interval=0.05) as shipper:
            for i, text in enumerate(lines):
                if i not in skip:
                    shipper.put(text, section="task" if i >= 3 else "readiness", offset=i)
            if end:
                shipper.put("", section="end", offset=len(lines))
        await client.indices.refresh(index="spinner-logs-*")


def archive(location: S3Location, lines: list[str], *, marker: bytes | None = None) -> None:
    s3 = boto3.client("s3", endpoint_url=location.endpoint_url, region_name="us-east-1")
    key = archive_key(location.prefix, KEY.dag_id, KEY.run_id, KEY.task_id, KEY.try_number)
    content = "".join(f"{line}\n" for line in lines).encode()
    s3.put_object(Bucket=location.bucket, Key=key, Body=content)
    s3.put_object(Bucket=location.bucket, Key=marker_key(key), Body=marker or ArchiveMarker.of(content).to_json())


async def test_archive_is_read_by_offset_with_sections(bucket: S3Location) -> None:
    archive(bucket, LOG)
    source = S3Source(bucket)
    try:
        reader = LogReader([source])
        chunk = await reader.read(KEY, 0, max_lines=10)
        assert [x.text for x in chunk.lines] == LOG[:10] and not chunk.complete and chunk.next_offset == 10
        assert chunk.readiness == "passed" and chunk.lines[1].section == "readiness"
        rest = await reader.read(KEY, 10)
        assert [x.offset for x in rest.lines] == list(range(10, len(LOG))) and rest.complete
        assert all(x.section == "task" for x in rest.lines)
    finally:
        await source.aclose()


async def test_a_log_whose_marker_is_missing_or_damaged_is_not_served_from_s3(
    bucket: S3Location, es_source: ElasticsearchSource, fake_elasticsearch: FakeElasticsearch
) -> None:
    await ship(fake_elasticsearch.url, LOG, end=True)
    archive(bucket, LOG, marker=b"{not json")
    source = S3Source(bucket)
    try:
        reader = LogReader([source, es_source])
        chunk = await reader.read(KEY, 0)
        assert chunk.source == "elasticsearch" and chunk.complete
        assert "marker" in chunk.fallback_reason and "damaged" in chunk.fallback_reason
        assert [x.text for x in chunk.lines] == LOG
    finally:
        await source.aclose()


async def test_elasticsearch_holds_back_at_a_gap_while_the_log_grows_and_skips_it_once_ended(
    es_source: ElasticsearchSource, fake_elasticsearch: FakeElasticsearch
) -> None:
    reader = LogReader([es_source])
    await ship(fake_elasticsearch.url, LOG[:12], skip={8}, end=False)
    growing = await reader.read(KEY, 0)
    assert [x.offset for x in growing.lines] == list(range(8)) and growing.next_offset == 8
    assert not growing.complete and growing.readiness == "passed"
    await ship(fake_elasticsearch.url, LOG, skip={8}, end=True)  # line 8 never arrives; the log ended
    ended = await reader.read(KEY, 8)
    assert [x.offset for x in ended.lines] == list(range(9, len(LOG))) and ended.complete
    assert ended.next_offset == len(LOG)


async def test_following_moves_from_elasticsearch_to_the_archive_without_repeating_a_line(
    bucket: S3Location, es_source: ElasticsearchSource, fake_elasticsearch: FakeElasticsearch
) -> None:
    await ship(fake_elasticsearch.url, LOG[:9], end=False)
    source = S3Source(bucket)
    reader = LogReader([source, es_source], follow_interval=0.05)
    seen: list[tuple[int, str, str]] = []
    try:
        async for chunk in reader.follow(KEY, 0):
            seen += [(x.offset, x.text, chunk.source) for x in chunk.lines]
            if len(seen) == 9:
                archive(bucket, LOG)  # the try ended: its archive appears
            if chunk.complete:
                break
    finally:
        await source.aclose()
    assert [(o, t) for o, t, _ in seen] == list(enumerate(LOG))
    assert {s for o, _, s in seen if o < 9} == {"elasticsearch"} and {s for o, _, s in seen if o >= 9} == {"s3"}


async def test_a_follow_of_a_killed_runner_s_shipped_lines_ends_once_its_try_has_ended(
    bucket: S3Location,
    es_source: ElasticsearchSource,
    fake_elasticsearch: FakeElasticsearch,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The pod's runner was killed (no end document, no archive) and the scheduler failed the try: the
    follow ends at the last shipped line instead of waiting for an end that never comes (SQLite, MariaDB)."""
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    async with sessions() as s, s.begin():
        s.add(DagRun(dag_id=KEY.dag_id, run_id=KEY.run_id, run_type="scheduled", state="running", logical_date=now,
                     partition="p", created_at=now))  # fmt: skip
        s.add(TaskInstance(dag_id=KEY.dag_id, run_id=KEY.run_id, task_id=KEY.task_id, partition="p", state="failed",
                           try_number=KEY.try_number, end_date=now, error="lost heartbeat"))  # fmt: skip
    await ship(fake_elasticsearch.url, LOG[:9], end=False)
    source = S3Source(bucket)
    reader = LogReader(
        [source, es_source], follow_interval=0.05, tries=TryStates(sessions), ended_quiet=0.3, state_interval=0.1
    )
    seen: list[LogChunk] = []

    async def follow() -> None:
        async for chunk in reader.follow(KEY, 0):
            seen.append(chunk)

    try:
        await asyncio.wait_for(follow(), 20)
    except TimeoutError:
        raise AssertionError(f"the follow did not end; saw {seen}") from None
    finally:
        await source.aclose()
    assert [x.text for c in seen for x in c.lines] == LOG[:9], seen
    last = seen[-1]
    assert last.complete and last.source == "elasticsearch" and last.next_offset == 9
    assert ENDED_UNMARKED in last.fallback_reason and last.readiness == "passed", last
    assert not any(c.complete for c in seen[:-1]), seen


async def test_no_log_anywhere_is_not_found_and_stores_down_are_unavailable(
    bucket: S3Location, es_source: ElasticsearchSource, fake_elasticsearch: FakeElasticsearch
) -> None:
    source = S3Source(bucket)
    reader = LogReader([source, es_source], not_found_grace=0.3, follow_interval=0.05)
    try:
        with pytest.raises(LogNotFound, match="has the try started"):
            await reader.read(KEY, 0)
        with pytest.raises(LogNotFound):  # a follower waits a little for a log to appear, then gives up
            async for _ in reader.follow(KEY, 0):
                pass
        fake_elasticsearch.stop()
        with pytest.raises(LogUnavailable, match="elasticsearch: unreachable"):
            await reader.read(KEY, 0)
    finally:
        await source.aclose()


RUNNER_OUTPUT = textwrap.dedent(
    """
    import os, sys, time
    from spinner.config import LogStoreSettings
    from spinner.runner.logstream import LogStream
    from spinner.tasklog import LogId

    stream = LogStream(LogId("etl", "load", "scheduled__2026-11-01T00:00:00+00:00", 2), LogStoreSettings(), print)
    stream.start()
    print("::spinner-section::task", flush=True)
    for i in range(50):
        print(f"row {i}", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    os.system("echo from a subprocess")
    stream.close()
    print(f"shipped={stream.shipper.stats.shipped if stream.shipper else 0} archived={stream.archived}")
    """
)


def run_runner(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER_OUTPUT)
    full = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[3]), **env)
    return subprocess.run(
        [sys.executable, str(script)], env=full, capture_output=True, text=True, timeout=60, check=True
    )


async def test_the_runner_writes_every_line_to_stdout_elasticsearch_and_the_archive(
    tmp_path: Path, bucket: S3Location, es_source: ElasticsearchSource, fake_elasticsearch: FakeElasticsearch
) -> None:
    env = {
        "SPINNER_ES_HOSTS": f'["{fake_elasticsearch.url}"]',
        "SPINNER_LOGS_BUCKET": bucket.bucket,
        "SPINNER_S3_ENDPOINT_URL": bucket.endpoint_url,
    }
    done = await asyncio.to_thread(run_runner, tmp_path, env)
    stdout = done.stdout.splitlines()
    assert stdout[-1] == "shipped=54 archived=True"  # 53 lines and the end of the log
    lines = stdout[:-1]
    assert "to stderr" in lines and "from a subprocess" in lines and lines[1:51] == [f"row {i}" for i in range(50)]
    source = S3Source(bucket)
    try:
        archived = await LogReader([source]).read(KEY, 0)
        assert [x.text for x in archived.lines] == lines and archived.complete
        async with AsyncElasticsearch(fake_elasticsearch.url) as client:
            await client.indices.refresh(index="spinner-logs-*")
        shipped = await LogReader([es_source]).read(KEY, 0)
        assert [x.text for x in shipped.lines] == lines and shipped.complete
        assert shipped.lines[1].section == "task"
    finally:
        await source.aclose()


async def test_the_runner_finishes_and_archives_while_elasticsearch_is_down(
    tmp_path: Path, bucket: S3Location, fake_elasticsearch: FakeElasticsearch
) -> None:
    fake_elasticsearch.stop()
    env = {
        "SPINNER_ES_HOSTS": f'["{fake_elasticsearch.url}"]',
        "SPINNER_ES_BUFFER_LINES": "10",
        "SPINNER_LOGS_BUCKET": bucket.bucket,
        "SPINNER_S3_ENDPOINT_URL": bucket.endpoint_url,
    }
    done = await asyncio.to_thread(run_runner, tmp_path, env)
    stdout = done.stdout.splitlines()
    assert stdout[-1] == "shipped=0 archived=True"
    assert any("did not reach Elasticsearch" in line and "the S3 archive has them all" in line for line in stdout)
    source = S3Source(bucket)
    try:
        archived = await LogReader([source]).read(KEY, 0)
        assert [x.text for x in archived.lines][1:51] == [f"row {i}" for i in range(50)] and archived.complete
    finally:
        await source.aclose()


async def test_each_instance_of_a_mapped_task_has_its_own_log_in_elasticsearch_and_s3(
    bucket: S3Location, es_source: ElasticsearchSource, fake_elasticsearch: FakeElasticsearch
) -> None:
    """Instances 0 and 1 and the unmapped try of the same task and try number: each reader finds its own lines."""
    ids = {i: LogId(KEY.dag_id, KEY.task_id, KEY.run_id, KEY.try_number, map_index=i) for i in (-1, 0, 1)}
    async with AsyncElasticsearch(fake_elasticsearch.url) as client:
        for i, log_id in ids.items():
            async with LogShipper(client, log_id, index_pattern=PATTERN, flush_interval=0.05) as shipper:
                for offset in range(3):
                    shipper.put(f"instance {i} line {offset}", section="task", offset=offset)
                shipper.put("", section="end", offset=3)
        await client.indices.refresh(index="spinner-logs-*")
    shipped = [d for d in fake_elasticsearch.documents() if d.get("section") != "end"]
    assert sorted({d.get("map_index", -1) for d in shipped}) == [-1, 0, 1]
    assert all("map_index" not in d for d in shipped if d["message"].startswith("instance -1"))  # unmapped: as before
    reader = LogReader([es_source])
    for i, log_id in ids.items():
        chunk = await reader.read(log_id, 0)
        assert [x.text for x in chunk.lines] == [f"instance {i} line {n}" for n in range(3)] and chunk.complete
    s3 = boto3.client("s3", endpoint_url=bucket.endpoint_url, region_name="us-east-1")
    for i in (0, 1):
        log_key = archive_key(bucket.prefix, KEY.dag_id, KEY.run_id, KEY.task_id, KEY.try_number, i)
        assert log_key.endswith(f"/{KEY.task_id}/map_index={i}/{KEY.try_number}.log")
        content = f"archived instance {i}\n".encode()
        s3.put_object(Bucket=bucket.bucket, Key=log_key, Body=content)
        s3.put_object(Bucket=bucket.bucket, Key=marker_key(log_key), Body=ArchiveMarker.of(content).to_json())
    source = S3Source(bucket)
    try:
        archived = LogReader([source, es_source])
        for i in (0, 1):
            chunk = await archived.read(ids[i], 0)
            assert chunk.source == "s3" and [x.text for x in chunk.lines] == [f"archived instance {i}"]
        unmapped = await archived.read(ids[-1], 0)  # not archived: Elasticsearch has its own lines
        assert unmapped.source == "elasticsearch" and unmapped.lines[0].text == "instance -1 line 0"
    finally:
        await source.aclose()
