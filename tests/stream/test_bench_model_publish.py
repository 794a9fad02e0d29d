"""bench.model_publish: each payload against its SADD-every-publish baseline, round trips counted."""

from __future__ import annotations

import pytest

from bench.model_publish import measure

pytestmark = [pytest.mark.integration]


def test_measure_compares_each_payload_with_the_index_at_every_publish() -> None:
    rows = measure(publishes=5, rounds=1)
    assert [(r["payload"], r["store"]) for r in rows] == [
        ("publish_learner", "SADD each (before)"),
        ("publish_learner", "SADD once"),
        ("publish bytes", "SADD each (before)"),
        ("publish bytes", "SADD once"),
    ]
    assert [r["round_trips"] for r in rows] == [2, 1, 2, 1]
    assert rows[0]["cpu_vs_baseline"] == rows[2]["wall_vs_baseline"] == 1.0
    for base, new in (rows[0:2], rows[2:4]):
        assert new["cpu_vs_baseline"] == pytest.approx(new["cpu_us"] / base["cpu_us"])
        assert min(new["cpu_us"], new["wall_us"], base["cpu_us"]) > 0


def test_measure_refuses_empty_runs() -> None:
    with pytest.raises(ValueError, match="publishes and rounds must be >= 1"):
        measure(publishes=0)
