""" "Something changed" events over MQTT. They only shorten waits: every consumer also polls.

Topics are `spinner/<cluster>/<kind>[/<key>]`: `runs/triggered`, `tasks/ended`,
`tasks/queued`, `snapshot` (dagsync switched to a new version), `bundles/published`
(`spinner dags push` wrote a new manifest to S3). Without a broker (`NullBus`) nothing is published and
`Waker.wait` simply times out on the poll interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlparse

import aiomqtt

log = logging.getLogger(__name__)

RUN_TRIGGERED = "runs/triggered"
TASK_ENDED = "tasks/ended"
TASK_QUEUED = "tasks/queued"
SNAPSHOT = "snapshot"
BUNDLE_PUBLISHED = "bundles/published"


@dataclass(frozen=True)
class Event:
    kind: str
    payload: dict[str, Any]


class EventBus(Protocol):
    async def publish(self, kind: str, payload: dict[str, Any]) -> None: ...

    def subscribe(self, kinds: Iterable[str]) -> AsyncIterator[Event]: ...

    async def aclose(self) -> None: ...


class NullBus:
    """No broker: publishing does nothing and subscriptions never yield."""

    async def publish(self, kind: str, payload: dict[str, Any]) -> None:
        return None

    async def subscribe(self, kinds: Iterable[str]) -> AsyncIterator[Event]:
        await asyncio.Event().wait()
        yield Event("", {})  # pragma: no cover - unreachable, makes this an async generator

    async def aclose(self) -> None:
        return None


class MqttBus(AbstractAsyncContextManager["MqttBus"]):
    """Publishes and subscribes over one aiomqtt client per subscription, reconnecting forever.

    A broker outage is logged and retried; publishes during it are dropped (the
    consumers' polling covers them).
    """

    def __init__(self, url: str, cluster: str, *, reconnect_delay: float = 1.0) -> None:
        parsed = urlparse(url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 1883
        self._username = parsed.username
        self._password = parsed.password
        self._prefix = f"spinner/{cluster}"
        self._reconnect_delay = reconnect_delay
        self._publisher: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    def _client(self) -> aiomqtt.Client:
        return aiomqtt.Client(self._host, self._port, username=self._username, password=self._password, timeout=5)

    async def __aenter__(self) -> MqttBus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._close_publisher()

    async def _close_publisher(self) -> None:
        if self._publisher is not None:
            publisher, self._publisher = self._publisher, None
            try:
                await publisher.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass

    async def publish(self, kind: str, payload: dict[str, Any]) -> None:
        topic = f"{self._prefix}/{kind}"
        async with self._lock:
            try:
                if self._publisher is None:
                    client = self._client()
                    await client.__aenter__()
                    self._publisher = client
                await self._publisher.publish(topic, json.dumps(payload), qos=0)
            except aiomqtt.MqttError as e:
                log.warning("event not published (%s): %s", topic, e)
                await self._close_publisher()

    async def subscribe(self, kinds: Iterable[str]) -> AsyncIterator[Event]:
        kinds = list(kinds)
        while True:
            try:
                async with self._client() as client:
                    for kind in kinds:
                        await client.subscribe(f"{self._prefix}/{kind}", qos=0)
                    # A reconnect may have missed events: report a wildcard so callers re-read.
                    yield Event("*", {})
                    async for message in client.messages:
                        kind = str(message.topic)[len(self._prefix) + 1 :]
                        try:
                            raw = message.payload
                            text = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
                            payload = json.loads(text) if text else {}
                        except (ValueError, UnicodeDecodeError):
                            log.warning("ignoring malformed event on %s", message.topic)
                            continue
                        yield Event(kind, payload if isinstance(payload, dict) else {})
            except aiomqtt.MqttError as e:
                log.warning("event subscription lost (%s); retrying in %.1fs", e, self._reconnect_delay)
                await asyncio.sleep(self._reconnect_delay)


def make_bus(mqtt_url: str, cluster: str) -> EventBus:
    return MqttBus(mqtt_url, cluster) if mqtt_url else NullBus()


class Waker:
    """Wakes a polling loop early. `wait` returns after the timeout or at the first `wake`."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """True when woken, False on timeout. Clears the flag either way."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()


async def wake_on_events(bus: EventBus, kinds: Iterable[str], waker: Waker) -> None:
    """Runs until cancelled: every matching event wakes the loop."""
    async for _event in bus.subscribe(kinds):
        waker.wake()
