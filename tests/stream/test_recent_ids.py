"""The learner's duplicate filter remembers what it promises, in bounded memory."""

from __future__ import annotations

import pytest

from stream.recent_ids import RecentIds


def test_remembers_half_the_horizon_of_event_time_at_least() -> None:
    ids = RecentIds(horizon_s=60.0, max_keys=10**6)
    keys = [((f"r{i}:t{i}", i % 3), i * 0.01) for i in range(20_000)]  # 200 s of event time
    assert all(ids.add(k, ts) for k, ts in keys)  # all distinct
    assert 3_000 <= len(ids) <= 6_000  # 30–60 s of them
    assert not any(ids.add(k, ts) for k, ts in keys[-3_000:])  # the last 30 s: duplicates
    assert ids.add(*keys[0])  # long gone


def test_a_burst_is_bounded_by_max_keys() -> None:
    ids = RecentIds(horizon_s=60.0, max_keys=1_000)
    assert all(ids.add(("r", i), 5.0) for i in range(10_000))  # one instant of event time
    assert 500 <= len(ids) <= 1_000
    assert not any(ids.add(("r", i), 5.0) for i in range(9_500, 10_000))


def test_a_revision_is_a_new_key() -> None:
    ids = RecentIds(horizon_s=10.0, max_keys=10)
    assert ids.add(("r1:t1", 0), 1.0) and ids.add(("r1:t1", 1), 1.0) and not ids.add(("r1:t1", 0), 1.0)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"RecentIds\.max_keys"):
        RecentIds(horizon_s=1.0, max_keys=1)
    with pytest.raises(ValueError, match=r"RecentIds\.horizon_s"):
        RecentIds(horizon_s=float("nan"), max_keys=10)
