"""monitoring/METRICS.md lists exactly what the bundles register, and everything the rules and dashboards read."""

from __future__ import annotations

import re

import pytest
from prometheus_client.metrics import MetricWrapperBase

from monitoring.catalog_metrics import CatalogMetrics
from monitoring.gate_metrics import GateMetrics
from monitoring.learner_metrics import LearnerMetrics
from monitoring.scoring_metrics import ScoringMetrics
from monitoring.stream_metrics import StreamMetrics
from tests.monitoring.promql import ROOT, alert_queries, dashboard_queries, metric_names, variable_queries

CATALOGUE = ROOT / "monitoring/METRICS.md"
ROW = re.compile(r"^\| `(smarttrip_\w+)` \| (counter|gauge|histogram) \| ([^|]*) \| ([^|]+) \|$", re.M)
BUNDLES = (ScoringMetrics, StreamMetrics, LearnerMetrics, CatalogMetrics, GateMetrics)
#: Labels that would make cardinality grow with users or traffic.
FORBIDDEN_LABELS = {
    "user",
    "user_id",
    "session",
    "session_id",
    "request_id",
    "trip_id",
    "event_id",
    "example_id",
}


def _catalogue() -> dict[str, tuple[str, frozenset[str]]]:
    rows = ROW.findall(CATALOGUE.read_text())
    assert rows, "no metric rows found in METRICS.md"
    names = [r[0] for r in rows]
    assert len(names) == len(set(names)), "a metric is listed twice"
    return {
        name: (
            kind,
            frozenset() if labels.strip() == "—" else frozenset(x.strip() for x in labels.split(",")),
        )
        for name, kind, labels, _ in rows
    }


def _registered() -> dict[str, tuple[str, frozenset[str]]]:
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for cls in BUNDLES:
        for metric in vars(cls()).values():
            if isinstance(metric, MetricWrapperBase):
                name = metric._name + ("_total" if metric._type == "counter" else "")
                assert name not in out, f"{name} registered by two bundles"
                out[name] = (metric._type, frozenset(metric._labelnames))
    return out


def test_catalogue_matches_the_registered_metrics() -> None:
    listed, registered = _catalogue(), _registered()
    assert sorted(set(registered) - set(listed)) == [], "registered but not in METRICS.md"
    assert sorted(set(listed) - set(registered)) == [], "in METRICS.md but not registered"
    for name, (kind, labels) in registered.items():
        assert listed[name] == (kind, labels), (
            f"{name}: METRICS.md says {listed[name]}, code has {(kind, labels)}"
        )


def test_no_label_grows_with_users_or_traffic() -> None:
    for name, (_, labels) in _registered().items():
        assert not labels & FORBIDDEN_LABELS, f"{name} has unbounded labels {labels & FORBIDDEN_LABELS}"


@pytest.mark.parametrize(
    "query", alert_queries() + dashboard_queries() + variable_queries(), ids=lambda q: q.where
)
def test_rules_and_dashboards_read_only_catalogued_metrics(query: object) -> None:
    listed = {re.sub(r"_total$", "", n) for n in _catalogue()} | set(_catalogue())
    used = metric_names(query.expr)  # type: ignore[attr-defined]
    assert used or "up{" in query.expr, f"{query}: reads no SmartTrip metric"  # type: ignore[attr-defined]
    assert used <= listed, f"not in METRICS.md: {sorted(used - listed)}"
