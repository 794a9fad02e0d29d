"""The Grafana dashboards, written as code and committed as provisioned JSON.

``python -m monitoring.grafana.dashboards`` writes ``ops.json`` and
``learning.json`` into ``monitoring/grafana/dashboards/`` (Grafana loads
them through ``monitoring/grafana/provisioning/``); a test checks that the
committed files equal what this module generates, and the live-stack test
runs every query against a Prometheus scraping the embedded stack.

Template variables: ``$segment`` (regex, "All" = ``.*``), ``$feature``
(the weight panel repeats per selected feature) and ``$ctr_window`` (the
smoothing window of CTR); ``$__rate_interval`` is Grafana's own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DASHBOARD_DIR",
    "DATASOURCE_UID",
    "dashboards",
    "learning_dashboard",
    "ops_dashboard",
    "render",
    "write",
]

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
#: uid of the provisioned Prometheus data source (provisioning/datasources/prometheus.yml).
DATASOURCE_UID = "smarttrip-prometheus"
_DS = {"type": "prometheus", "uid": DATASOURCE_UID}
_RANK = 'endpoint="/v1/rank"'
_RI = "$__rate_interval"
_W = "$ctr_window"
_SEG = 'segment=~"$segment"'

Target = tuple[str, str]  # (PromQL, legend)


def _panel(
    title: str,
    targets: Sequence[Target],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    description: str = "",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": _DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": _DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
        **extra,
    }


def _row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def _layout(items: Sequence[dict[str, Any]], width: int = 8, height: int = 8) -> list[dict[str, Any]]:
    """Place panels left to right, three per line; rows take a full line. Ids follow the order."""
    out: list[dict[str, Any]] = []
    x = y = 0
    for i, item in enumerate(items, start=1):
        item = dict(item, id=i)
        if item["type"] == "row":
            if x:
                x, y = 0, y + height
            item["gridPos"] = {"x": 0, "y": y, "w": 24, "h": 1}
            y += 1
        else:
            w = item.pop("width", width)
            if x + w > 24:
                x, y = 0, y + height
            item["gridPos"] = {"x": x, "y": y, "w": w, "h": height}
            x += w
        out.append(item)
    return out


def _quantiles(metric: str, selector: str, qs: Sequence[float] = (0.5, 0.95, 0.99)) -> list[Target]:
    return [
        (
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{selector}}}[{_RI}])))",
            f"p{round(q * 100)}",
        )
        for q in qs
    ]


def _dashboard(
    uid: str, title: str, panels: list[dict[str, Any]], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["smarttrip"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": _layout(panels),
    }


def _query_var(name: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "type": "query",
        "datasource": _DS,
        "query": {"query": query, "refId": f"var-{name}"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": multi,
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def ops_dashboard() -> dict[str, Any]:
    """Request rate, latency, errors, Kafka/Redis health, lag, spool, dead letters."""
    panels = [
        _row("Scoring worker"),
        _panel("Rank requests/s by variant", [
            (f"sum by (variant) (rate(smarttrip_scoring_request_seconds_count{{{_RANK}}}[{_RI}]))", "{{variant}}"),
        ], unit="reqps"),
        _panel("Rank latency", _quantiles("smarttrip_scoring_request_seconds", _RANK), unit="s"),
        _panel("Requests/s by endpoint and status", [
            (f"sum by (endpoint, status) (rate(smarttrip_scoring_requests_total[{_RI}]))", "{{endpoint}} {{status}}"),
        ], unit="reqps"),
        _panel("Errors: non-2xx responses/s", [
            (f'sum by (endpoint, status) (rate(smarttrip_scoring_requests_total{{status!~"2.."}}[{_RI}]))',
             "{{endpoint}} {{status}}"),
        ], unit="reqps"),
        _panel("5xx ratio", [
            (f'(sum(rate(smarttrip_scoring_requests_total{{status=~"5.."}}[{_RI}])) or vector(0))'
             f" / sum(rate(smarttrip_scoring_requests_total[{_RI}]))", "5xx / all"),
        ], unit="percentunit", description="Alert SmartTripErrorRatioHigh fires above 1 % for 5 minutes."),
        _panel("Requests served by the rules instead of the variant's policy", [
            (f"sum by (policy, reason) (rate(smarttrip_scoring_policy_fallbacks_total[{_RI}]))",
             "{{policy}}: {{reason}}"),
        ], unit="reqps"),
        _row("Dependencies"),
        _panel("Redis reachable (1 = yes)", [
            ("min by (instance) (smarttrip_scoring_redis_up)", "scoring {{instance}}"),
            ("min by (instance) (smarttrip_learner_redis_up)", "learner {{instance}}"),
        ], description="Alert SmartTripRedisUnreachable fires after 30 s at 0."),
        _panel("Kafka reachable from the scoring worker (1 = yes)", [
            ("min by (instance) (smarttrip_scoring_kafka_up)", "{{instance}}"),
        ]),
        _panel("Scrape targets up", [
            ('up{job=~"scoring|stream-join|stream-learner"}', "{{job}} {{instance}}"),
        ]),
        _row("Stream lag"),
        _panel("Consumer lag (records)", [
            ("sum by (job, topic) (smarttrip_stream_consumer_lag_records)", "{{job}} {{topic}}"),
            ("sum by (job, topic) (smarttrip_learner_consumer_lag_records)", "{{job}} {{topic}}"),
        ]),
        _panel("Join watermark lag", [
            ("max by (instance) (smarttrip_stream_watermark_lag_seconds)", "{{instance}}"),
        ], unit="s"),
        _panel("Window close lag (after the attribution window ends)",
               _quantiles("smarttrip_stream_window_close_lag_seconds", "", (0.5, 0.99)), unit="s"),
        _panel("Join input events/s", [
            (f"sum by (topic, outcome) (rate(smarttrip_stream_events_total[{_RI}]))", "{{topic}} {{outcome}}"),
        ], unit="ops"),
        _panel("Open sessions in the join", [
            ("sum by (instance) (smarttrip_stream_open_sessions)", "{{instance}}"),
        ]),
        _panel("Join micro-batch time", _quantiles("smarttrip_stream_batch_seconds", "", (0.5, 0.99)), unit="s"),
        _row("Impression log, spool and dead letters"),
        _panel("Spool (records waiting for Kafka on disk)", [
            ("sum by (instance) (smarttrip_scoring_spool_bytes)", "bytes {{instance}}"),
            ("sum by (instance) (smarttrip_scoring_spool_records)", "records {{instance}}"),
            ("sum by (instance) (smarttrip_scoring_log_queue_depth)", "in-memory queue {{instance}}"),
        ]),
        _panel("Records to Kafka/s by outcome", [
            (f"sum by (topic, outcome) (rate(smarttrip_scoring_log_records_total[{_RI}]))", "{{topic}} {{outcome}}"),
        ], unit="ops"),
        _panel("Dead letters/s", [
            (f"sum by (stage, reason) (rate(smarttrip_stream_deadletters_total[{_RI}]))", "join: {{stage}} {{reason}}"),
            (f"sum by (reason) (rate(smarttrip_learner_deadletters_total[{_RI}]))", "learner: {{reason}}"),
        ], unit="ops"),
    ]  # fmt: skip
    return _dashboard("smarttrip-ops", "SmartTrip — operations", panels, [])


def _ctr(by: str, extra: str = "") -> str:
    sel = ", ".join(s for s in (_SEG, extra) if s)
    return (
        f"sum by ({by}) (rate(smarttrip_stream_clicks_total{{{sel}}}[{_W}]))"
        f" / sum by ({by}) (rate(smarttrip_stream_shown_total{{{sel}}}[{_W}]))"
    )


def learning_dashboard() -> dict[str, Any]:
    """CTR by variant, segment and position against the rules; model versions and age; weights; loss."""
    rules_ctr = _ctr("policy", 'policy="rules"').replace("sum by (policy) ", "sum ")
    learned_ctr = _ctr("policy", 'policy!="rules"')
    panels = [
        _row("Click-through rate (slate items at window close; policy = what scored the slate)"),
        _panel("CTR by policy (rules = the baseline)", [(_ctr("policy"), "{{policy}}")], unit="percentunit"),
        _panel("CTR lift over the rules", [
            (f"({learned_ctr}) / on () group_left () ({rules_ctr}) - 1", "{{policy}}"),
        ], unit="percentunit", description="Alert SmartTripLearnedCTRBelowRules fires below -10 % for 15 minutes."),
        _panel("CTR by segment and policy", [(_ctr("policy, segment"), "{{policy}} {{segment}}")],
               unit="percentunit"),
        _panel("CTR by position shown", [
            (f"sum by (policy, position) (rate(smarttrip_stream_clicks_by_position_total[{_W}]))"
             f" / sum by (policy, position) (rate(smarttrip_stream_shown_by_position_total[{_W}]))",
             "{{policy}} @{{position}}"),
        ], unit="percentunit", width=16),
        _panel("Impressions/s by variant and segment (scoring worker)", [
            (f"sum by (variant, segment) (rate(smarttrip_scoring_impressions_total{{{_SEG}}}[{_RI}]))",
             "{{variant}} {{segment}}"),
        ], unit="ops"),
        _row("Models"),
        _panel("Served model version (scoring worker)", [
            (f"max by (policy, segment) (smarttrip_scoring_model_version{{{_SEG}}})", "{{policy}} {{segment}}"),
        ]),
        _panel("Served model age", [
            (f"max by (policy, segment) (smarttrip_scoring_model_age_seconds{{{_SEG}}})", "{{policy}} {{segment}}"),
        ], unit="s", description="Alert SmartTripModelStale fires above 15 minutes on a segment with traffic."),
        _panel("Published model version (learner)", [
            (f"max by (policy, segment) (smarttrip_learner_model_version{{{_SEG}}})", "{{policy}} {{segment}}"),
        ]),
        _panel("Time since the last publish (learner)", [
            (f"time() - max by (policy, segment) (smarttrip_learner_model_published_timestamp_seconds{{{_SEG}}})",
             "{{policy}} {{segment}}"),
        ], unit="s"),
        _panel("Impression → model freshness (clicked examples)",
               _quantiles("smarttrip_learner_impression_to_model_seconds", "", (0.5, 0.99)), unit="s"),
        _panel("Publishes/s by result", [
            (f"sum by (policy, result) (rate(smarttrip_learner_publishes_total[{_RI}]))", "{{policy}} {{result}}"),
        ], unit="ops"),
        _row("Weights and loss"),
        _panel("Weight of $feature: learned vs rules", [
            (f'smarttrip_learner_weight{{{_SEG}, feature=~"$feature"}}', "{{policy}} {{segment}}"),
            ('max by (feature) (smarttrip_learner_rule_weight{feature=~"$feature"})', "rules"),
        ], width=12, repeat="feature", repeatDirection="h", maxPerRow=2,
           description="Learned weights are on each learner's own scale (logit, reward); the rule weight is "
                       "the site's fixed score."),
        _panel("Rolling progressive loss", [
            (f"max by (policy, segment) (smarttrip_learner_rolling_loss{{{_SEG}}})", "{{policy}} {{segment}}"),
        ], width=12),
        _panel("Examples/s by policy and outcome (learner)", [
            (f"sum by (policy, outcome) (rate(smarttrip_learner_examples_total{{{_SEG}}}[{_RI}]))",
             "{{policy}} {{outcome}}"),
        ], unit="ops", width=12),
    ]  # fmt: skip
    window = {
        "name": "ctr_window",
        "type": "custom",
        "query": "5m,15m,1h,6h",
        "current": {"text": "15m", "value": "15m"},
        "options": [{"text": w, "value": w, "selected": w == "15m"} for w in ("5m", "15m", "1h", "6h")],
    }
    variables = [
        _query_var("segment", "label_values(smarttrip_stream_shown_total, segment)"),
        _query_var("feature", "label_values(smarttrip_learner_weight, feature)"),
        window,
    ]
    return _dashboard("smarttrip-learning", "SmartTrip — learning", panels, variables)


def dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON object."""
    return {"ops.json": ops_dashboard(), "learning.json": learning_dashboard()}


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = DASHBOARD_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, dashboard in dashboards().items():
        path = directory / name
        path.write_text(render(dashboard), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DASHBOARD_DIR):
        print(p)
