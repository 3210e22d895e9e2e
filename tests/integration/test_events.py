"""Events over the real Mosquitto broker wake waiting services; without a broker nothing breaks.

Every wait is bounded by asyncio.timeout, so a broken broker fails a test in seconds, never hangs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from urllib.parse import urlparse

import aiomqtt
import pytest

from spinner.events import (
    SNAPSHOT,
    TASK_ENDED,
    TASK_QUEUED,
    Event,
    EventBus,
    MqttBus,
    NullBus,
    Waker,
    make_bus,
    wake_on_events,
)

TIMEOUT = 5.0


def _cluster() -> str:
    """A cluster name of its own, so tests sharing the broker never see each other's events."""
    return f"test-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def _subscribed(bus: EventBus, kinds: Iterable[str]) -> AsyncIterator[AsyncIterator[Event]]:
    """A subscription closed on exit, so its broker connection never outlives the test."""
    events = bus.subscribe(kinds)
    try:
        yield events
    finally:
        assert isinstance(events, AsyncGenerator)
        await events.aclose()


async def _next(events: AsyncIterator[Event]) -> Event:
    async with asyncio.timeout(TIMEOUT):
        return await anext(events)


async def test_published_event_reaches_a_subscriber(mqtt_url: str) -> None:
    async with MqttBus(mqtt_url, _cluster()) as bus, _subscribed(bus, [TASK_ENDED]) as events:
        # The wildcard comes once the subscription is live: publishing earlier could be lost.
        assert await _next(events) == Event("*", {})
        await bus.publish(TASK_QUEUED, {"ignored": True})  # a kind nobody subscribed to
        await bus.publish(TASK_ENDED, {"dag_id": "d", "run_id": "r", "state": "success"})
        assert await _next(events) == Event(TASK_ENDED, {"dag_id": "d", "run_id": "r", "state": "success"})


async def test_events_of_other_clusters_are_not_seen(mqtt_url: str) -> None:
    async with (
        MqttBus(mqtt_url, _cluster()) as mine,
        MqttBus(mqtt_url, _cluster()) as theirs,
        _subscribed(mine, [SNAPSHOT]) as events,
    ):
        assert (await _next(events)).kind == "*"
        await theirs.publish(SNAPSHOT, {"version": "theirs"})
        await mine.publish(SNAPSHOT, {"version": "mine"})
        assert await _next(events) == Event(SNAPSHOT, {"version": "mine"})


async def test_malformed_payload_is_skipped_and_the_subscription_lives(
    mqtt_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = _cluster()
    broker = urlparse(mqtt_url)
    caplog.set_level(logging.WARNING, logger="spinner.events")
    async with MqttBus(mqtt_url, cluster) as bus, _subscribed(bus, [SNAPSHOT]) as events:
        assert (await _next(events)).kind == "*"
        async with aiomqtt.Client(broker.hostname or "127.0.0.1", broker.port or 1883) as raw:
            await raw.publish(f"spinner/{cluster}/{SNAPSHOT}", b"\xff not json")
            await raw.publish(f"spinner/{cluster}/{SNAPSHOT}", b"{not json either")
        await bus.publish(SNAPSHOT, {"version": "v2"})
        assert await _next(events) == Event(SNAPSHOT, {"version": "v2"})
    assert caplog.text.count("ignoring malformed event") == 2


async def test_unreachable_broker_logs_and_does_not_fail_publishers(caplog: pytest.LogCaptureFixture) -> None:
    bus = MqttBus("mqtt://127.0.0.1:1", "test")  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="spinner.events"):
        async with asyncio.timeout(TIMEOUT):
            await bus.publish(TASK_ENDED, {"x": 1})
            await bus.publish(TASK_ENDED, {"x": 2})  # and again: the broken client was dropped
            await bus.aclose()
    assert caplog.text.count("event not published") == 2


async def test_events_wake_a_polling_loop(mqtt_url: str) -> None:
    waker = Waker()
    async with MqttBus(mqtt_url, _cluster()) as bus, asyncio.TaskGroup() as tg:
        listener = tg.create_task(wake_on_events(bus, [TASK_ENDED], waker))
        assert await waker.wait(TIMEOUT) is True  # the wildcard on connect: re-read the database
        await bus.publish(TASK_ENDED, {"dag_id": "d"})
        assert await waker.wait(TIMEOUT) is True
        listener.cancel()


async def test_no_broker_means_a_null_bus() -> None:
    bus = make_bus("", "c")
    assert isinstance(bus, NullBus)
    await bus.publish(TASK_ENDED, {"dag_id": "d"})
    async with _subscribed(bus, [TASK_ENDED]) as events:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await anext(events)
    await bus.aclose()
    assert isinstance(make_bus("mqtt://127.0.0.1:1883", "c"), MqttBus)


async def test_waker_times_out_without_a_wake() -> None:
    started = time.monotonic()
    assert await Waker().wait(0.05) is False
    assert time.monotonic() - started >= 0.04


async def test_waker_wakes_a_waiter_early() -> None:
    waker = Waker()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, waker.wake)
    started = time.monotonic()
    assert await waker.wait(TIMEOUT) is True
    assert time.monotonic() - started < 1.0


async def test_a_wake_before_the_wait_is_not_lost_and_is_used_once() -> None:
    waker = Waker()
    waker.wake()
    assert await waker.wait(TIMEOUT) is True
    assert await waker.wait(0.01) is False
