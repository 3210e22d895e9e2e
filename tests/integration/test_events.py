"""Events over the real Mosquitto broker wake waiting services; without a broker nothing breaks."""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiomqtt
import pytest

from spinner.events import Event, MqttBus, NullBus, Waker, make_bus


async def test_published_event_reaches_a_subscriber(mqtt_url: str) -> None:
    cluster = f"test-{uuid.uuid4().hex[:8]}"
    bus = MqttBus(mqtt_url, cluster)
    received: list[Event] = []

    async def listen() -> None:
        async for event in bus.subscribe(["tasks/ended"]):
            received.append(event)
            if event.kind != "*":
                return

    listener = asyncio.create_task(listen())
    try:
        async with asyncio.timeout(10):
            while not received:  # the subscription is live once the wildcard arrives
                await asyncio.sleep(0.02)
            await bus.publish("tasks/ended", {"dag_id": "d", "state": "success"})
            await listener
    finally:
        listener.cancel()
        await bus.aclose()
    assert received[-1] == Event("tasks/ended", {"dag_id": "d", "state": "success"})


async def test_malformed_payload_is_skipped_and_the_subscription_lives(mqtt_url: str) -> None:
    cluster = f"test-{uuid.uuid4().hex[:8]}"
    bus = MqttBus(mqtt_url, cluster)
    received: list[Event] = []

    async def listen() -> None:
        async for event in bus.subscribe(["snapshot"]):
            received.append(event)
            if event.kind == "snapshot":
                return

    listener = asyncio.create_task(listen())
    try:
        async with asyncio.timeout(10):
            while not received:
                await asyncio.sleep(0.02)
            async with aiomqtt.Client("127.0.0.1", 1883) as raw:
                await raw.publish(f"spinner/{cluster}/snapshot", b"\xff not json")
            await bus.publish("snapshot", {"version": "v2"})
            await listener
    finally:
        listener.cancel()
        await bus.aclose()
    assert [e for e in received if e.kind != "*"] == [Event("snapshot", {"version": "v2"})]


async def test_unreachable_broker_does_not_fail_publishers(caplog: pytest.LogCaptureFixture) -> None:
    bus = MqttBus("mqtt://127.0.0.1:1", "test")
    with caplog.at_level(logging.WARNING):
        async with asyncio.timeout(10):
            await bus.publish("tasks/ended", {"x": 1})
    await bus.aclose()
    assert "event not published" in caplog.text


async def test_no_broker_means_a_null_bus_and_polling() -> None:
    bus = make_bus("", "c")
    assert isinstance(bus, NullBus)
    await bus.publish("tasks/ended", {})
    waker = Waker()
    assert await waker.wait(0.05) is False
    waker.wake()
    assert await waker.wait(5) is True
