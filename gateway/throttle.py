"""Failed logins per (user name, address): after a few in a short time, that pair waits.

Kept in each gateway process: several gateways behind a load balancer each allow the limit,
which still turns a password guesser's thousands of tries a minute into a handful.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW = 300.0  # seconds
MAX_KEYS = 100_000  # forget the oldest pairs past this (memory stays bounded under a spray)


class LoginThrottle:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def wait(self, username: str, remote_addr: str) -> float:
        """Seconds before this pair may try again (0: now)."""
        times = self._failures.get((username.lower(), remote_addr))
        if not times:
            return 0.0
        now = self._clock()
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) < self._max:
            return 0.0
        return max(0.0, times[0] + self._window - now)

    def failed(self, username: str, remote_addr: str) -> None:
        key = (username.lower(), remote_addr)
        times = self._failures.pop(key, None) or deque(maxlen=self._max)
        times.append(self._clock())
        self._failures[key] = times  # to the end: the dict stays oldest first
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, username: str, remote_addr: str) -> None:
        self._failures.pop((username.lower(), remote_addr), None)
