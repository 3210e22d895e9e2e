"""Failed logins slow the next try down, per user name, per address and per (user name, address).

Not a lock: after a few free failures each further one doubles the wait before the next try,
up to MAX_DELAY, and failures are forgotten after FORGET seconds of quiet. A password guesser
gets a handful of tries a minute; the real user, even behind the same proxy address as the
guesser, waits seconds, never minutes, and then their right password goes through.

Three counters, so neither spreading guesses over many addresses (the user's counter) nor over
many user names (the address's) escapes them, while the address's counter, which a proxy makes
everyone share, allows many more free failures.

Kept in each gateway process: several gateways behind a load balancer each count on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

FREE = {"pair": 3, "user": 10, "addr": 30}  # failures before any wait, per counter
BASE_DELAY = 1.0  # seconds: the wait after the first failure past the free ones, doubled by each next
MAX_DELAY = 30.0  # seconds: the longest wait, however many failures
FORGET = 900.0  # seconds without a failure after which a counter starts again from 0
MAX_KEYS = 100_000  # forget the oldest counters past this (memory stays bounded under a spray)


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[tuple[str, ...], _Failures] = {}

    @staticmethod
    def _keys(username: str, remote_addr: str) -> list[tuple[str, ...]]:
        name = username.lower()
        return [("pair", name, remote_addr), ("user", name), ("addr", remote_addr)]

    def wait(self, username: str, remote_addr: str) -> float:
        """Seconds before this user name may try again from this address (0: now)."""
        now = self._clock()
        longest = 0.0
        for key in self._keys(username, remote_addr):
            f = self._failures.get(key)
            if f is None or now - f.last >= FORGET:
                continue
            past_free = f.count - FREE[key[0]]
            if past_free >= 0:
                delay = min(MAX_DELAY, BASE_DELAY * 2 ** min(past_free, 16))
                longest = max(longest, f.last + delay - now)
        return max(0.0, longest)

    def failed(self, username: str, remote_addr: str) -> None:
        now = self._clock()
        for key in self._keys(username, remote_addr):
            f = self._failures.pop(key, None)
            count = f.count + 1 if f is not None and now - f.last < FORGET else 1
            self._failures[key] = _Failures(count, now)  # to the end: the dict stays oldest first
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, username: str, remote_addr: str) -> None:
        """The pair starts again; the user's and the address's counters stay (one good password of
        the guesser's own must not wipe the trail of its guesses at others)."""
        self._failures.pop(("pair", username.lower(), remote_addr), None)
