"""Metrics of the stream (join) worker, on an explicit registry.

One bundle per process, created with its own ``CollectorRegistry`` (as
faust's ``sensors/prometheus.py`` does) so tests can build several without
global clashes. Labels are bounded: topic, outcome, reason, position bucket,
policy and segment (mapped onto closed sets by :mod:`monitoring.labels`).
The catalogue of every metric is ``monitoring/METRICS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitoring.labels import policy_label, segment_label

__all__ = ["StreamMetrics", "position_label"]

_POSITION_BUCKETS = 20  # positions ≥ 20 share one label, keeping cardinality bounded


def position_label(position: int) -> str:
    return str(position) if position < _POSITION_BUCKETS else f"{_POSITION_BUCKETS}+"


@dataclass
class StreamMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "smarttrip_stream_events_total",
            "Input events by source topic and outcome (ok, deadletter).",
            ["topic", "outcome"],
            registry=r,
        )
        self.examples = Counter(
            "smarttrip_stream_examples_total",
            "Examples emitted, by kind (new, correction).",
            ["kind"],
            registry=r,
        )
        self.joined_clicks = Counter(
            "smarttrip_stream_joined_clicks_total",
            "Clicked examples emitted, by 0-based position shown.",
            ["position"],
            registry=r,
        )
        self.join_events = Counter(
            "smarttrip_stream_join_events_total",
            "Join bookkeeping: attached, held, late_attached, duplicate_interaction, "
            "duplicate_impression, forced_close.",
            ["kind"],
            registry=r,
        )
        self.deadletters = Counter(
            "smarttrip_stream_deadletters_total",
            "Records sent to the dead-letter topic, by stage and reason.",
            ["stage", "reason"],
            registry=r,
        )
        self.open_sessions = Gauge(
            "smarttrip_stream_open_sessions", "Sessions held by this worker's join.", registry=r
        )
        self.watermark_lag = Gauge(
            "smarttrip_stream_watermark_lag_seconds",
            "Wall clock minus the join's event-time watermark.",
            registry=r,
        )
        self.window_close_lag = Histogram(
            "smarttrip_stream_window_close_lag_seconds",
            "Wall-clock delay between a slate's window end and its examples being emitted.",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
            registry=r,
        )
        self.filtered_sessions = Counter(
            "smarttrip_stream_filtered_sessions_total",
            "Sessions flagged by a bot rule (fast_clicks, click_flood, click_through, long_session, "
            "many_slates); their examples never reach the learners.",
            ["reason"],
            registry=r,
        )
        self.filtered_examples = Counter(
            "smarttrip_stream_filtered_examples_total",
            "Examples not emitted to the learners, by reason (a bot rule, or user_cap).",
            ["reason"],
            registry=r,
        )
        self.capped_users = Counter(
            "smarttrip_stream_capped_users_total",
            "Times a user reached the per-user example cap within a window.",
            registry=r,
        )
        self.quality_tracked = Gauge(
            "smarttrip_stream_quality_tracked",
            "Entries held by the traffic-quality state before expiry: sessions of the bot rules, (user, window) counts of the user cap.",
            ["kind"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "smarttrip_stream_batch_seconds",
            "Time to process one micro-batch.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.shown = Counter(
            "smarttrip_stream_shown_total",
            "Slate items whose window closed (first emission of an example), by policy that scored "
            "the slate and segment: the denominator of CTR.",
            ["policy", "segment"],
            registry=r,
        )
        self.clicks = Counter(
            "smarttrip_stream_clicks_total",
            "Clicked slate items at window close, by policy and segment: the numerator of CTR.",
            ["policy", "segment"],
            registry=r,
        )
        self.shown_by_position = Counter(
            "smarttrip_stream_shown_by_position_total",
            "Slate items whose window closed, by policy and 0-based position shown.",
            ["policy", "position"],
            registry=r,
        )
        self.clicks_by_position = Counter(
            "smarttrip_stream_clicks_by_position_total",
            "Clicked slate items at window close, by policy and 0-based position shown.",
            ["policy", "position"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "smarttrip_stream_consumer_lag_records",
            "Records in this worker's assigned partitions not yet read (high watermark - position), by topic.",
            ["topic"],
            registry=r,
        )
        self.log_gated = Gauge(
            "smarttrip_stream_log_gated_partitions",
            "Input partitions being read contiguously from a new log's start (the broker lost its log); "
            "back to 0 once their commits in the new log caught up.",
            registry=r,
        )
        self.stalled_seeks = Counter(
            "smarttrip_stream_stalled_seeks_total",
            "Input partitions sought back because records fetched for them never reached the join "
            "(stream.delivery_watch), by topic.",
            ["topic"],
            registry=r,
        )
        self._slate: dict[tuple[str, str, int, bool], tuple[Any, ...]] = {}

    def slate_item(self, policy: str, segment: str, position: int, clicked: bool, n: int = 1) -> None:
        """``n`` examples at their first emission: CTR counters by (policy, segment) and (policy, position)."""
        key = (policy, segment, position, clicked)
        children = self._slate.get(key)
        if children is None:
            p, s, pos = policy_label(policy), segment_label(segment), position_label(position)
            children = (self.shown.labels(p, s), self.shown_by_position.labels(p, pos))
            if clicked:
                children += (self.clicks.labels(p, s), self.clicks_by_position.labels(p, pos))
            if len(self._slate) < 10_000:  # the cache is bounded like the labels
                self._slate[key] = children
        for child in children:
            child.inc(n)
