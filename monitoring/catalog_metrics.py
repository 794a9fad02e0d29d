"""Metrics of the catalog update agent (``smarttrip worker --mode catalog``), on its own registry.

=============================================  ==========================================================
metric                                         meaning
=============================================  ==========================================================
smarttrip_catalog_version                      the catalog version the agent last published or loaded
smarttrip_catalog_age_seconds                  now − that version's publish time
smarttrip_catalog_trips                        trips in that version, by status (``unavailable`` apart)
smarttrip_catalog_updates_total                updates read, by outcome (updated, inserted, deleted,
                                               unchanged, rejected)
smarttrip_catalog_rejected_updates_total       updates dead-lettered, by reason
smarttrip_catalog_update_lag_seconds           record time → the version containing it is published
smarttrip_catalog_publishes_total              publishes by outcome (ok, conflict, error)
smarttrip_catalog_deadletter_errors_total      dead letters that could not be produced (logged instead)
=============================================  ==========================================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["LAG_BUCKETS", "CatalogMetrics"]

LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class CatalogMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        r = self.registry
        self.version = Gauge(
            "smarttrip_catalog_version", "Catalog version last published or loaded.", registry=r
        )
        self.age = Gauge(
            "smarttrip_catalog_age_seconds", "Seconds since that version was published.", registry=r
        )
        self.trips = Gauge(
            "smarttrip_catalog_trips", "Trips in the catalog by status.", ["status"], registry=r
        )
        self.updates = Counter(
            "smarttrip_catalog_updates_total", "Trip updates read, by outcome.", ["outcome"], registry=r
        )
        self.rejected = Counter(
            "smarttrip_catalog_rejected_updates_total", "Trip updates dead-lettered, by reason.", ["reason"],
            registry=r,
        )  # fmt: skip
        self.lag = Histogram(
            "smarttrip_catalog_update_lag_seconds",
            "Seconds from an update's record time to the publish of the version containing it.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.publishes = Counter(
            "smarttrip_catalog_publishes_total", "Catalog publishes by outcome.", ["outcome"], registry=r
        )
        self.deadletter_errors = Counter(
            "smarttrip_catalog_deadletter_errors_total",
            "Dead letters that could not be produced.",
            registry=r,
        )

    def set_version(self, version: int, created_at: float, by_status: Mapping[str, int]) -> None:
        self.version.set(version)
        self.age.set_function(lambda: max(self.clock() - created_at, 0.0))
        for status, n in by_status.items():
            self.trips.labels(status).set(n)
