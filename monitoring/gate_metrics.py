"""Metrics of the promotion gate worker (``smarttrip worker --mode gate``), on an explicit registry.

Labels are bounded: policy and segment (a handful each), decision
(promote, hold, pending), reason and stage (fixed code lists). The catalogue of
every metric is ``monitoring/METRICS.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["GateMetrics"]


@dataclass
class GateMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.decisions = Counter(
            "smarttrip_gate_decisions_total",
            "Gate decisions on candidate model versions, by policy, segment and decision (promote, hold, pending).",
            ["policy", "segment", "decision"],
            registry=r,
        )
        self.window = Gauge(
            "smarttrip_gate_window_examples",
            "Logged examples the gate holds for off-policy evaluation, by segment.",
            ["segment"],
            registry=r,
        )
        self.bad_examples = Counter(
            "smarttrip_gate_bad_examples_total",
            "Example records the gate could not decode (skipped and counted), by reason.",
            ["reason"],
            registry=r,
        )
        self.errors = Counter(
            "smarttrip_gate_errors_total",
            "Evaluations that could not run, by stage (load, evaluate, store).",
            ["stage"],
            registry=r,
        )
        self.promoted_version = Gauge(
            "smarttrip_gate_promoted_version",
            "Version the gate last promoted, by policy and segment.",
            ["policy", "segment"],
            registry=r,
        )
