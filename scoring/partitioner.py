"""aiokafka's default partitioner, remembering the murmur2 hash of recent keys.

Impressions and interactions are keyed by session id, and a session's
records come in runs: each of its ranks and every click of them. aiokafka's
:class:`~aiokafka.partitioner.DefaultPartitioner` hashes the key in pure
Python for every record (~15 µs for a 40-byte session id), ~4 % of the
scoring worker's CPU under the soak's traffic (py-spy, GIL samples).
:class:`CachedPartitioner` picks exactly the partition the default one
picks (``murmur2(key) & 0x7fffffff`` modulo the partition count, into the
sorted partition list; a random available partition for a None key) and
keeps the hashes of the last ``size`` to ``2 * size`` keys, in two generations:
when the new one holds ``size`` keys the old one is dropped, so a key in use
stays (a hit in the old generation moves it to the new one). The bound used
to be one dict of 65,536 keys emptied when full: ~9 MiB that filled at the
rate of new sessions (~190/s in the soak), i.e. for ~6 minutes, which showed
as RSS growth of the scoring worker long after the soak's warm-up. A
session's records come within seconds of each other, so 4,096 keys a
generation (~1.1 MiB in all, full within a minute) keep nearly every hit.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.partitioner import DefaultPartitioner

from stream.batch_producer import murmur2_hash

__all__ = ["CachedPartitioner"]


class CachedPartitioner:
    """A drop-in ``partitioner`` for ``AIOKafkaProducer`` (see the module docstring).

    >>> p = CachedPartitioner()
    >>> p(b"sim-session-1", [0, 1, 2, 3], [0, 1, 2, 3]) == DefaultPartitioner()(b"sim-session-1", [0, 1, 2, 3], [])
    True
    """

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"size: must be >= 1, got {size}")
        self.size = size
        self._new: dict[bytes, int] = {}
        self._old: dict[bytes, int] = {}
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return int(self._default(key, all_partitions, available))
        h = self._new.get(key)
        if h is None:
            h = self._old.get(key)
            if h is None:
                h = murmur2_hash(key)
            if len(self._new) >= self.size:
                self._old, self._new = self._new, {}
            self._new[key] = h
        return all_partitions[h % len(all_partitions)]

    def __len__(self) -> int:
        """Keys remembered (at most ``2 * size``)."""
        return len(self._new) + len(self._old)
