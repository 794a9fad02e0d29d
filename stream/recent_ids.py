"""The example ids a learner has seen lately, for dropping re-emitted duplicates, in bounded memory.

Why: the learner drops an example whose ``(example_id, revision)`` it has
already learned (the join re-emits after a crash, within seconds to tens of
seconds of event time of the first emission). It used to keep the last
200,000 such tuples per segment in an ``OrderedDict``: 161 bytes an entry
(tracemalloc, 200,000 keys) plus the id string it kept alive, and a count
bound fills at the segment's own rate, so a quiet segment's dict kept
growing for many minutes — in the soak at 500 ranks/s the learner's RSS
grew past the 10 % target. :class:`RecentIds` keeps 64-bit hashes of the
keys in two generations of sets (77 bytes an entry, same measurement),
rotated by the examples' event time: a key is remembered for at least
``horizon_s / 2`` and at most ``horizon_s`` of event time after it, and
within at most ``max_keys`` keys (a hard memory bound for bursts).
Event time, not the wall clock, so replays drop the same duplicates as the
live worker. Python's string hash is keyed per process (SipHash), so two
different keys collide with probability ~2⁻⁶⁴ per pair — a collision would
count one example as a duplicate (counted, not silent).

>>> ids = RecentIds(horizon_s=10.0, max_keys=100)
>>> [ids.add(k, ts) for k, ts in (("a", 0.0), ("b", 1.0), ("a", 2.0), ("c", 6.0), ("a", 7.0))]
[True, True, False, True, False]
>>> ids.add("d", 12.0), ids.add("a", 12.5)  # a's generation (from 0.0) ended at 10.0: forgotten
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Hashable

__all__ = ["RecentIds"]


class RecentIds:
    """Keys seen in the last ``horizon_s / 2`` to ``horizon_s`` of event time (at most ``max_keys``)."""

    __slots__ = ("_half_keys", "_half_s", "_new", "_old", "_started")

    def __init__(self, *, horizon_s: float, max_keys: int) -> None:
        if not (math.isfinite(horizon_s) and horizon_s > 0):
            raise ValueError(f"RecentIds.horizon_s: must be a finite number > 0, got {horizon_s!r}")
        if max_keys < 2:
            raise ValueError(f"RecentIds.max_keys: must be >= 2, got {max_keys}")
        self._half_s = horizon_s / 2
        self._half_keys = max_keys // 2
        self._new: set[int] = set()
        self._old: set[int] = set()
        self._started = -math.inf  # event time the current generation began

    def __len__(self) -> int:
        return len(self._new) + len(self._old)

    def add(self, key: Hashable, ts: float) -> bool:
        """Remember ``key`` seen at event time ``ts``; False if it was seen lately (a duplicate)."""
        h = hash(key)
        if h in self._new or h in self._old:
            return False
        if ts >= self._started + self._half_s or len(self._new) >= self._half_keys:
            self._old, self._new = self._new, set()
            self._started = ts
        self._new.add(h)
        return True
