"""The example ids a learner has seen lately, for dropping re-emitted duplicates, in little memory.

Why: the learner drops an example whose ``(example_id, revision)`` it has
already learned (the join re-emits after a crash). It used to keep those
tuples in an ``OrderedDict`` of 200,000 per segment: 161 bytes an entry
(tracemalloc, 200,000 keys) plus the id string it keeps alive, so in the
soak at 500 ranks/s the learner's RSS kept growing for minutes as the dicts
filled. :class:`RecentIds` keeps 64-bit hashes of the keys in two
generations of sets (77 bytes an entry, same measurement): a key is remembered until ``capacity // 2`` to
``capacity`` keys were added after it. Python's string hash is keyed per process
(SipHash), so two different keys collide with probability ~2⁻⁶⁴ per pair —
a collision would count one example as a duplicate (counted, not silent).

>>> ids = RecentIds(capacity=4)
>>> [ids.add(k) for k in ("a", "b", "a", "c", "d", "e", "f", "a")]
[True, True, False, True, True, True, True, True]
>>> len(ids)  # e and f, then a
3
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["RecentIds"]


class RecentIds:
    """At least the last ``capacity // 2`` and fewer than ``capacity`` keys added."""

    __slots__ = ("_half", "_new", "_old")

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"RecentIds.capacity: must be >= 2, got {capacity}")
        self._half = capacity // 2
        self._new: set[int] = set()
        self._old: set[int] = set()

    def __len__(self) -> int:
        return len(self._new) + len(self._old)

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; False if it was seen lately (a duplicate)."""
        h = hash(key)
        if h in self._new or h in self._old:
            return False
        self._new.add(h)
        if len(self._new) >= self._half:
            self._old, self._new = self._new, set()
        return True
