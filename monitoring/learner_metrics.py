"""Metrics of the learner worker, on an explicit registry (see :mod:`monitoring.stream_metrics`).

Labels are bounded: policy (a handful), segment (a handful), feature (the
20 columns of φ), reason (guardrail codes), topic (the examples topic). The
catalogue of every metric is ``monitoring/METRICS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from scoring.weights import SCORING_WEIGHTS

__all__ = ["LearnerMetrics"]


@dataclass
class LearnerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.examples = Counter(
            "smarttrip_learner_examples_total",
            "Examples by policy, segment and outcome (learned, skipped_offset, duplicate).",
            ["policy", "segment", "outcome"],
            registry=r,
        )
        self.deadletters = Counter(
            "smarttrip_learner_deadletters_total", "Undecodable example records.", ["reason"], registry=r
        )
        self.publishes = Counter(
            "smarttrip_learner_publishes_total",
            "Model publishes by policy and result (ok, rejected, conflict, unavailable).",
            ["policy", "result"],
            registry=r,
        )
        self.rejected = Counter(
            "smarttrip_learner_rejected_total",
            "Publishes refused by a guardrail, by reason.",
            ["reason"],
            registry=r,
        )
        self.publish_seconds = Histogram(
            "smarttrip_learner_publish_seconds",
            "Time of one publish cycle (all dirty models).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=r,
        )
        self.model_version = Gauge(
            "smarttrip_learner_model_version", "Last published version.", ["policy", "segment"], registry=r
        )
        self.model_published_at = Gauge(
            "smarttrip_learner_model_published_timestamp_seconds",
            "When the last version was published (model age = now - this).",
            ["policy", "segment"],
            registry=r,
        )
        self.weight = Gauge(
            "smarttrip_learner_weight",
            "Current weight per φ feature of the learned model (interpretable next to the rule weights).",
            ["policy", "segment", "feature"],
            registry=r,
        )
        self.impression_to_model = Histogram(
            "smarttrip_learner_impression_to_model_seconds",
            "For clicked examples: wall time from the impression to the first published model that "
            "learned it (bounds click-to-model freshness from above).",
            buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 900),
            registry=r,
        )
        self.loss = Gauge(
            "smarttrip_learner_rolling_loss",
            "Progressive (predict-then-learn) loss over the last window of examples.",
            ["policy", "segment"],
            registry=r,
        )
        self.rule_weight = Gauge(
            "smarttrip_learner_rule_weight",
            "The site's fixed rule weight per φ feature (constant; drawn next to the learned weights).",
            ["feature"],
            registry=r,
        )
        for feature, value in SCORING_WEIGHTS.items():
            self.rule_weight.labels(feature).set(value)
        self.redis_up = Gauge(
            "smarttrip_learner_redis_up",
            "1 when the learner's last contact with Redis (partition assignment or model publish) "
            "succeeded, 0 when Redis was unreachable; NaN before the first contact.",
            registry=r,
        )
        self.redis_up.set(float("nan"))
        self.consumer_lag = Gauge(
            "smarttrip_learner_consumer_lag_records",
            "Records in this worker's assigned partitions not yet read (high watermark - position), by topic.",
            ["topic"],
            registry=r,
        )
        self.acks_held = Gauge(
            "smarttrip_learner_acks_held",
            "Consumed examples whose Kafka offset is not committed yet because a model that learned them is not stored yet.",
            registry=r,
        )
        self.acks_forced = Counter(
            "smarttrip_learner_acks_forced_total",
            "Examples acknowledged to Kafka before their models were stored (held messages over the limit).",
            registry=r,
        )
        self.drift_events = Counter(
            "smarttrip_learner_drift_events_total",
            "ADWIN drift detections by policy, segment, signal (clicks of the serving policy, "
            "loss of the learning policy) and direction (up, down).",
            ["policy", "segment", "signal", "direction"],
            registry=r,
        )
        self.drift_responses = Counter(
            "smarttrip_learner_drift_responses_total",
            "Drift responses applied to a model (restart_lr, forget).",
            ["policy", "segment", "action"],
            registry=r,
        )
