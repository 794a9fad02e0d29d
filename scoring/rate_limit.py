"""Per-client request rate limit: one token bucket per client, bounded in memory.

A client is the bearer token it authenticated with (named by its position in
the settings, never by its value), or its remote address when it did not
authenticate, so guessing tokens is limited too. Each bucket holds up to
``burst`` tokens and refills at ``rate`` tokens per second; a request takes
one token or is refused with the seconds until one is available, which the
API answers as ``429`` with ``Retry-After``. At most ``max_clients`` buckets
are kept (the least recently used is forgotten: a forgotten client starts
with a full bucket, which errs on the side of serving).

>>> clock = iter([0.0, 0.0, 0.0, 0.5]).__next__
>>> limiter = RateLimiter(rate=2.0, burst=2, clock=clock)
>>> limiter.acquire("a"), limiter.acquire("a"), limiter.acquire("a"), limiter.acquire("a")
(0.0, 0.0, 0.5, 0.0)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets keyed by client (see the module docstring); ``rate=0`` turns the limit off."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate < 0:
            raise ValueError(f"rate: must be >= 0, got {rate}")
        if burst < 1:
            raise ValueError(f"burst: must be >= 1, got {burst}")
        if max_clients < 1:
            raise ValueError(f"max_clients: must be >= 1, got {max_clients}")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def acquire(self, client: str) -> float:
        """Take one token for ``client``: 0.0 when granted, else the seconds to wait for one."""
        if self.rate == 0:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
