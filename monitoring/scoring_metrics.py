"""Metrics of the scoring worker, on an explicit registry (one bundle per process).

Labels are bounded: endpoint (the route template), variant (at most 16 per
experiment), segment (:data:`features.context.SEGMENTS`), policy, status
code, topic and outcome. Children on the hot path are cached
(:meth:`ScoringMetrics.latency`), since ``labels()`` costs a few µs per call.

=============================================  ==========================================================
metric                                         meaning
=============================================  ==========================================================
smarttrip_scoring_request_seconds              latency histogram by endpoint and variant ("" off /v1/rank)
smarttrip_scoring_requests_total               requests by endpoint and HTTP status
smarttrip_scoring_impressions_total            impressions served by variant and segment
smarttrip_scoring_policy_fallbacks_total       requests the rules policy served instead, by policy, reason
smarttrip_scoring_events_total                 interactions accepted, by type
smarttrip_scoring_log_records_total            records by topic and outcome (sent, spooled, replayed, dropped)
smarttrip_scoring_log_queue_depth              records waiting in memory for the producer
smarttrip_scoring_spool_bytes / _records       what the spool holds (not yet replayed)
smarttrip_scoring_model_version                serving version per policy and segment
smarttrip_scoring_model_age_seconds            now − the model's publish time, per policy and segment
smarttrip_scoring_model_swaps_total            models swapped in, by policy and segment
smarttrip_scoring_model_load_errors_total      failed loads by policy and reason
smarttrip_scoring_redis_up / _kafka_up         1 when the dependency answers, else 0
smarttrip_scoring_catalog_trips                trips in the loaded catalog (0 = not ready)
smarttrip_scoring_catalog_version              catalog version served (store versions; 0 = a file)
smarttrip_scoring_catalog_age_seconds          now − the served catalog version's publish time
smarttrip_scoring_catalog_trips_by_status      trips of the served version by status (+ unavailable)
smarttrip_scoring_catalog_swaps_total          catalog versions swapped in
smarttrip_scoring_catalog_load_errors_total    catalog versions that failed to load, by reason
smarttrip_scoring_experiment_revision          revision of the experiment in force
=============================================  ==========================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["LATENCY_BUCKETS", "ScoringMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass
class ScoringMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        r = self.registry
        self.request_seconds = Histogram(
            "smarttrip_scoring_request_seconds",
            "Request latency in the handler, by endpoint and variant.",
            ["endpoint", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "smarttrip_scoring_requests_total",
            "Requests by endpoint and status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.impressions = Counter(
            "smarttrip_scoring_impressions_total",
            "Impressions served by variant and segment.",
            ["variant", "segment"],
            registry=r,
        )
        self.shadow = Counter(
            "smarttrip_scoring_shadow_scored_total",
            "Requests also scored by an unpromoted candidate (shadow scoring, never served), by policy.",
            ["policy"],
            registry=r,
        )
        self.fallbacks = Counter(
            "smarttrip_scoring_policy_fallbacks_total",
            "Requests served by the rules policy instead of the variant's, by policy and reason.",
            ["policy", "reason"],
            registry=r,
        )
        self.events = Counter(
            "smarttrip_scoring_events_total",
            "Interactions accepted on /v1/events, by type.",
            ["type"],
            registry=r,
        )
        self.log_records = Counter(
            "smarttrip_scoring_log_records_total",
            "Records to Kafka by topic and outcome: sent, spooled, replayed, dropped.",
            ["topic", "outcome"],
            registry=r,
        )
        self.log_queue = Gauge(
            "smarttrip_scoring_log_queue_depth", "Records waiting in memory for the producer.", registry=r
        )
        self.spool_bytes = Gauge(
            "smarttrip_scoring_spool_bytes", "Bytes in the spool not yet replayed.", registry=r
        )
        self.spool_records = Gauge(
            "smarttrip_scoring_spool_records", "Records in the spool not yet replayed.", registry=r
        )
        self.model_version = Gauge(
            "smarttrip_scoring_model_version", "Serving model version.", ["policy", "segment"], registry=r
        )
        self.model_age = Gauge(
            "smarttrip_scoring_model_age_seconds",
            "Seconds since the serving model was published.",
            ["policy", "segment"],
            registry=r,
        )
        self.model_swaps = Counter(
            "smarttrip_scoring_model_swaps_total", "Models swapped in.", ["policy", "segment"], registry=r
        )
        self.model_load_errors = Counter(
            "smarttrip_scoring_model_load_errors_total",
            "Model loads that failed, by policy and reason.",
            ["policy", "reason"],
            registry=r,
        )
        self.redis_up = Gauge("smarttrip_scoring_redis_up", "1 when Redis answers, else 0.", registry=r)
        self.kafka_up = Gauge(
            "smarttrip_scoring_kafka_up", "1 when Kafka accepts records, else 0.", registry=r
        )
        self.catalog_trips = Gauge(
            "smarttrip_scoring_catalog_trips", "Trips in the loaded catalog (0 = none).", registry=r
        )
        self.catalog_version = Gauge(
            "smarttrip_scoring_catalog_version", "Catalog version served (0 = from a file).", registry=r
        )
        self.catalog_age = Gauge(
            "smarttrip_scoring_catalog_age_seconds",
            "Seconds since the served catalog version was published.",
            registry=r,
        )
        self.catalog_by_status = Gauge(
            "smarttrip_scoring_catalog_trips_by_status",
            "Trips of the served catalog version by status (unavailable ones apart).",
            ["status"],
            registry=r,
        )
        self.catalog_swaps = Counter(
            "smarttrip_scoring_catalog_swaps_total", "Catalog versions swapped in.", registry=r
        )
        self.catalog_load_errors = Counter(
            "smarttrip_scoring_catalog_load_errors_total",
            "Catalog versions that failed to load, by reason.",
            ["reason"],
            registry=r,
        )
        self.experiment_revision = Gauge(
            "smarttrip_scoring_experiment_revision", "Revision of the experiment in force.", registry=r
        )
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, int], Any] = {}
        self._impressions: dict[tuple[str, str], Any] = {}

    # -- cached children for the hot path
    def observe(self, endpoint: str, variant: str, status: int, seconds: float) -> None:
        """One finished request: latency and status count."""
        key = (endpoint, variant)
        child = self._latency.get(key)
        if child is None:
            child = self._latency[key] = self.request_seconds.labels(endpoint, variant)
        child.observe(seconds)
        skey = (endpoint, status)
        counter = self._requests.get(skey)
        if counter is None:
            counter = self._requests[skey] = self.requests.labels(endpoint, str(status))
        counter.inc()

    def impression(self, variant: str, segment: str) -> None:
        key = (variant, segment)
        child = self._impressions.get(key)
        if child is None:
            child = self._impressions[key] = self.impressions.labels(variant, segment)
        child.inc()

    def set_catalog(self, version: int, created_at: float, by_status: dict[str, int], trips: int) -> None:
        """Record a swapped-in catalog version; its age is computed at scrape time."""
        self.catalog_version.set(version)
        self.catalog_age.set_function(lambda: max(self.clock() - created_at, 0.0))
        for status, n in by_status.items():
            self.catalog_by_status.labels(status).set(n)
        self.catalog_trips.set(trips)
        self.catalog_swaps.inc()

    def set_model(self, policy: str, segment: str, version: int, created_at: float) -> None:
        """Record a swapped-in model; its age is computed at scrape time."""
        self.model_version.labels(policy, segment).set(version)
        self.model_age.labels(policy, segment).set_function(lambda: max(self.clock() - created_at, 0.0))
        self.model_swaps.labels(policy, segment).inc()
