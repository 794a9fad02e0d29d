"""The soak's short CI variant: the whole loop at a low fixed rate for 30 s (`smarttrip bench soak` runs 10 min)."""

from __future__ import annotations

import pytest

from bench import soak


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(180)
def test_short_soak_whole_loop_no_errors_lag_drains() -> None:
    r = soak.run(
        rate=40.0,
        minutes=0.5,
        warmup_s=8.0,
        drain_s=20.0,
        concurrency=8,
        seed=3,
        allowed_lateness_s=4.0,
        dedupe_horizon_s=4.0,
    )
    assert r.errors == {}, r.errors
    assert r.ranks + r.unsent == 40 * 30  # every planned request was answered or counted as not sent
    assert r.throughput >= 0.9 * 40, r.throughput
    # ranking time ends with the last answer, before the last clicks' simulated dwell
    assert 25.0 < r.duration_s <= r.wall_s, (r.duration_s, r.wall_s)
    assert r.latency_ms["p50"] > 0 and r.latency_ms["p99"] >= r.latency_ms["p50"]
    assert r.events_posted > 0 and r.examples_joined > 0 and r.examples_learned > 0  # the loop closed
    assert r.dead_letters == 0 and r.dead_letters_by_reason == {}, r.dead_letters_by_reason
    assert r.state_ttl_s == 8.0 and r.horizons == {"join": 8.0, "learner": 8.0}
    assert r.warmup_s >= max(r.horizons.values())
    assert set(r.rss_start) == {"scoring", "join", "learner", "kafka", "redis", "driver"}
    for rss in (r.rss_start, r.rss_warm, r.rss_end):
        assert set(rss) == set(r.rss_start) and all(v for v in rss.values()), rss
    assert all(r.cpu_s[n] for n in ("scoring", "join", "learner", "driver")), r.cpu_s  # every one worked
    assert r.cpu_us_per_rank("scoring") is not None
    assert r.lag_drained == {"join": 0, "learner": 0}, r.lag_drained
    assert set(r.targets()) == {"throughput", "errors", "rss_growth", "lag_drained"}
    assert r.targets()["lag_drained"]


def test_warm_up_shorter_than_the_longest_state_horizon_of_a_judged_process_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"warmup_s: must be >= the longest state horizon .* \(34 s\), got 20"
    ):
        soak.run(warmup_s=20.0, allowed_lateness_s=30.0, dedupe_horizon_s=10.0)
    # the learner's duplicate filter (120 s of event time by default) is the longest: 40 s no longer does
    with pytest.raises(
        ValueError, match=r"\(124 s\), got 40: join 34 s .* learner 124 s \(duplicate filter 120"
    ):
        soak.run(warmup_s=40.0, allowed_lateness_s=30.0)
    with pytest.raises(ValueError, match="allowed_lateness_s"):
        soak.run(allowed_lateness_s=-1.0)
    with pytest.raises(ValueError, match="dedupe_horizon_s"):
        soak.run(dedupe_horizon_s=0.0)
    assert soak.soak_stream_env({}, 30.0)["SMARTTRIP_DEDUPE_HORIZON_S"] == "120"


def test_report_table_states_ttls_reasons_rss_and_cpu() -> None:
    from rich.console import Console

    from bench.soak_report import table

    mib = 2**20
    r = soak.SoakResult(
        rate=100.0, minutes=1.0, warmup_s=40.0, ranks=6000, duration_s=60.0,
        latency_ms={"p50": 20.0, "p99": 90.0}, errors={}, events_posted=900, unsent=0,
        rss_start={"scoring": 100 * mib, "join": 100 * mib}, rss_warm={"scoring": 200 * mib, "join": 300 * mib},
        rss_end={"scoring": 210 * mib, "join": 360 * mib}, cpu_s={"scoring": 6.0, "join": None},
        lag_end={"join": 5.0}, lag_drained={"join": 0.0}, drain_s=20.0, examples_joined=60000.0,
        examples_learned=180000.0, dead_letters=3.0, dead_letters_by_reason={"join/orphan": 3.0},
        allowed_lateness_s=30.0,
    )  # fmt: skip
    console = Console(width=250, record=True)
    console.print(table(r))
    text = console.export_text()
    title = " ".join(text.split("┏")[0].split())  # the title wraps at the table's width
    assert "attribution window 3 s, allowed lateness 30 s, longest state TTL 34 s" in title
    assert "learner duplicate filter 120 s; warm-up covers the longest state horizon of each judged" in title
    assert "(join 34 s, learner 124 s)" in title
    assert "3 (join/orphan 3)" in text
    assert "100 → 200 → 210 (+5.0% after warm-up)" in text and "(+20.0% after warm-up)" in text
    assert "1,000 µs (5% of" in text  # 6 s of CPU over 6,000 ranks in 60 s
    assert r.targets() == {
        "throughput": True,
        "errors": True,
        "rss_growth": False,
        "lag_drained": True,
    }  # join +20 %
