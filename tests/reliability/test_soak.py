"""The soak's short CI variant: the whole loop at a low fixed rate for 30 s (`smarttrip bench soak` runs 10 min)."""

from __future__ import annotations

import pytest

from bench import soak


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(180)
def test_short_soak_whole_loop_no_errors_lag_drains() -> None:
    r = soak.run(
        rate=40.0, minutes=0.5, warmup_s=8.0, drain_s=20.0, concurrency=8, seed=3, allowed_lateness_s=4.0
    )
    assert r.errors == {}, r.errors
    assert r.ranks + r.unsent == 40 * 30  # every planned request was answered or counted as not sent
    assert r.throughput >= 0.9 * 40, r.throughput
    assert r.latency_ms["p50"] > 0 and r.latency_ms["p99"] >= r.latency_ms["p50"]
    assert r.events_posted > 0 and r.examples_joined > 0 and r.examples_learned > 0  # the loop closed
    assert r.dead_letters == 0 and r.dead_letters_by_reason == {}, r.dead_letters_by_reason
    assert r.state_ttl_s == 8.0 and r.warmup_s >= r.state_ttl_s
    assert set(r.rss_start) == {"scoring", "join", "learner", "kafka", "redis", "driver"}
    for rss in (r.rss_start, r.rss_warm, r.rss_end):
        assert set(rss) == set(r.rss_start) and all(v for v in rss.values()), rss
    assert all(r.cpu_s[n] for n in ("scoring", "join", "learner", "driver")), r.cpu_s  # every one worked
    assert r.cpu_us_per_rank("scoring") is not None
    assert r.lag_drained == {"join": 0, "learner": 0}, r.lag_drained
    assert set(r.targets()) == {"throughput", "errors", "rss_growth"}


def test_warm_up_shorter_than_the_longest_state_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match=r"warmup_s: must be >= the longest state TTL \(34 s"):
        soak.run(warmup_s=20.0, allowed_lateness_s=30.0)
    with pytest.raises(ValueError, match="allowed_lateness_s"):
        soak.run(allowed_lateness_s=-1.0)
