"""The soak's short CI variant: the whole loop at a low fixed rate for 30 s (`smarttrip bench soak` runs 10 min)."""

from __future__ import annotations

import pytest

from bench import soak


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(180)
def test_short_soak_whole_loop_no_errors_lag_drains() -> None:
    r = soak.run(rate=40.0, minutes=0.5, warmup_s=8.0, drain_s=20.0, concurrency=8, seed=3)
    assert r.errors == {}, r.errors
    assert r.ranks + r.unsent == 40 * 30  # every planned request was answered or counted as not sent
    assert r.throughput >= 0.9 * 40, r.throughput
    assert r.latency_ms["p50"] > 0 and r.latency_ms["p99"] >= r.latency_ms["p50"]
    assert r.events_posted > 0 and r.examples_joined > 0 and r.examples_learned > 0  # the loop closed
    assert r.dead_letters == 0
    assert set(r.rss_start) == {"scoring", "join", "learner", "kafka", "redis", "driver"}
    assert all(v for v in r.rss_start.values()) and all(v for v in r.rss_end.values())
    assert r.lag_drained == {"join": 0, "learner": 0}, r.lag_drained
    assert set(r.targets()) == {"throughput", "errors", "rss_growth"}
