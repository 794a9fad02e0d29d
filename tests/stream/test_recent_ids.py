"""The learner's duplicate filter remembers what it promises, in bounded memory."""

from __future__ import annotations

import pytest

from stream.recent_ids import RecentIds


def test_remembers_at_least_half_its_capacity_of_the_latest_keys() -> None:
    ids = RecentIds(capacity=1_000)
    keys = [(f"r{i}:t{i}", i % 3) for i in range(10_000)]
    assert all(ids.add(k) for k in keys)  # all distinct
    assert 500 <= len(ids) < 1_000
    assert not any(ids.add(k) for k in keys[-500:])  # the last half-capacity: duplicates
    assert ids.add(keys[0])  # long gone


def test_a_revision_is_a_new_key() -> None:
    ids = RecentIds(capacity=10)
    assert ids.add(("r1:t1", 0)) and ids.add(("r1:t1", 1)) and not ids.add(("r1:t1", 0))


def test_capacity_is_checked() -> None:
    with pytest.raises(ValueError, match=r"RecentIds\.capacity"):
        RecentIds(capacity=1)
