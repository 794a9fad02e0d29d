"""CachedPartitioner picks aiokafka's DefaultPartitioner's partition (scoring.partitioner)."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from scoring.partitioner import CachedPartitioner


def test_equals_the_default_partitioner_on_seeded_keys_and_partition_counts() -> None:
    rng = random.Random(11)
    default, cached = DefaultPartitioner(), CachedPartitioner(size=500)
    keys = [rng.randbytes(rng.randrange(0, 60)) for _ in range(2000)]
    keys += [f"sim-{rng.getrandbits(64):032x}".encode() for _ in range(500)]
    for n in (1, 2, 3, 4, 7, 12, 64):
        partitions = list(range(n))
        for key in keys + keys[:300]:  # the repeats are served from the cache
            assert cached(key, partitions, partitions) == default(key, partitions, partitions)
    assert 0 < len(cached) <= 1000  # bounded: two generations of at most 500 keys


def test_a_none_key_goes_to_an_available_partition() -> None:
    cached = CachedPartitioner()
    assert {cached(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert {cached(None, [0, 1, 2, 3], []) for _ in range(200)} <= {0, 1, 2, 3}
    assert len(cached) == 0


def test_size_is_validated() -> None:
    with pytest.raises(ValueError, match="size: must be >= 1"):
        CachedPartitioner(size=0)


def test_memory_is_bounded_and_keys_in_use_stay_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    import scoring.partitioner as module
    from stream.batch_producer import murmur2_hash

    hashed: list[bytes] = []

    def counted(key: bytes) -> int:
        hashed.append(key)
        return murmur2_hash(key)

    monkeypatch.setattr(module, "murmur2_hash", counted)
    cached, hot, parts = CachedPartitioner(size=100), b"session-hot", [0, 1, 2, 3]
    for i in range(1000):  # many sessions come and go; one stays active all along
        assert cached(f"session-{i}".encode(), parts, parts) == DefaultPartitioner()(
            f"session-{i}".encode(), parts, parts
        )
        cached(hot, parts, parts)
        assert len(cached) <= 200
    assert hashed.count(hot) == 1  # never forgotten while in use (a full cache used to be emptied)
    assert len(hashed) == 1001
