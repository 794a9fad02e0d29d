"""The metrics added for monitoring: CTR counters with bounded labels, consumer lag, learner health."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from monitoring.consumer_lag import consumer_lag
from monitoring.learner_metrics import LearnerMetrics
from monitoring.stream_metrics import StreamMetrics
from scoring.weights import SCORING_WEIGHTS


def _value(registry: Any, name: str, **labels: str) -> float | None:
    v = registry.get_sample_value(name, labels)
    return None if v is None else float(v)


def test_slate_items_count_shown_and_clicked_by_policy_segment_and_position() -> None:
    m = StreamMetrics()
    for position in range(10):
        m.slate_item("linucb", "budget", position, clicked=position in (0, 3))
    m.slate_item("linucb", "budget", 0, clicked=True)
    m.slate_item("rules", "budget", 25, clicked=False)
    r = m.registry
    assert _value(r, "smarttrip_stream_shown_total", policy="linucb", segment="budget") == 11
    assert _value(r, "smarttrip_stream_clicks_total", policy="linucb", segment="budget") == 3
    assert _value(r, "smarttrip_stream_clicks_by_position_total", policy="linucb", position="0") == 2
    assert _value(r, "smarttrip_stream_shown_by_position_total", policy="linucb", position="3") == 1
    assert _value(r, "smarttrip_stream_clicks_by_position_total", policy="linucb", position="1") is None
    assert _value(r, "smarttrip_stream_shown_by_position_total", policy="rules", position="20+") == 1
    assert _value(r, "smarttrip_stream_clicks_total", policy="rules", segment="budget") is None


def test_label_values_from_records_are_bounded() -> None:
    m = StreamMetrics()
    for i in range(50):
        m.slate_item(f"policy-{i}", f"segment-{i}", i, clicked=True)
    shown = [s for f in m.registry.collect() if f.name == "smarttrip_stream_shown" for s in f.samples]
    assert {(s.labels["policy"], s.labels["segment"]) for s in shown if s.name.endswith("_total")} == {
        ("other", "other")
    }
    assert _value(m.registry, "smarttrip_stream_clicks_total", policy="other", segment="other") == 50


@dataclass(frozen=True)
class _TP:
    topic: str
    partition: int


class _Consumer:
    def __init__(
        self, highwater: dict[_TP, int | None], read: dict[_TP, int], committed: dict[_TP, int]
    ) -> None:
        self._hw, self._read_offset, self._committed_offset = highwater, read, committed

    def highwater(self, tp: _TP) -> int | None:
        return self._hw[tp]

    def assignment(self) -> set[_TP]:
        return set(self._hw)


class _App:
    def __init__(self, consumer: _Consumer) -> None:
        self.consumer = consumer


def test_consumer_lag_sums_owned_partitions_per_topic() -> None:
    a0, a1, a2, b0 = _TP("impressions", 0), _TP("impressions", 1), _TP("impressions", 2), _TP("other", 0)
    consumer = _Consumer(
        highwater={a0: 100, a1: 50, a2: None, b0: 7},
        read={a0: 89},  # read up to 89: 10 left
        committed={a1: 20},  # nothing read since the commit at 20: 30 left
    )
    lag = consumer_lag(_App(consumer), ("impressions", "interactions"))
    assert lag == {"impressions": 40, "interactions": 0}  # a2 unknown (no fetch yet), "other" not asked


def test_consumer_lag_counts_from_the_agents_progress_not_faust_read_ahead() -> None:
    a0, a1 = _TP("examples", 0), _TP("examples", 1)
    # Faust has read (buffered) up to 89 and 49; the agent has taken up to 39 of a0 and nothing of a1.
    consumer = _Consumer(highwater={a0: 100, a1: 50}, read={a0: 89, a1: 49}, committed={a1: 20})
    assert consumer_lag(_App(consumer), ("examples",)) == {"examples": 10}
    assert consumer_lag(_App(consumer), ("examples",), {("examples", 0): 39}) == {"examples": 60 + 30}


def test_consumer_lag_of_an_app_not_started_is_zero_per_topic() -> None:
    class NotStarted:
        @property
        def consumer(self) -> Any:
            raise RuntimeError("consumer not started")

    assert consumer_lag(NotStarted(), ("examples",)) == {"examples": 0}


def test_learner_exports_the_rule_weights_next_to_the_learned_ones() -> None:
    m = LearnerMetrics()
    for feature, weight in SCORING_WEIGHTS.items():
        assert _value(m.registry, "smarttrip_learner_rule_weight", feature=feature) == weight
    up = _value(m.registry, "smarttrip_learner_redis_up")
    assert up is not None and math.isnan(up)  # unknown until the first contact: never reads as "down"
