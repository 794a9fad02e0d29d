"""One /v1/rank request end to end, without HTTP: variant → candidates → φ → scores → slate → impression.

:class:`Ranker` is what the HTTP handler calls (and what tests call
directly). The impression's bytes are built later by the impression log's
sender task from a closure over the request's arrays, so encoding never
adds to the request's latency.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from bandit.segments import GLOBAL_SEGMENT
from features.catalog import Catalog, day_number
from features.phi import FEATURE_VERSION, PHI_NAMES, phi
from monitoring.scoring_metrics import ScoringMetrics
from scoring.errors import NotReady
from scoring.experiment_store import ExperimentStore
from scoring.exploration import Slate, deterministic, epsilon_greedy, plackett_luce, request_rng
from scoring.filters import candidate_rows
from scoring.impression_log import ImpressionLog
from scoring.model_cache import ModelCache
from scoring.policies import Scored, score_request
from scoring.requests import RankRequest, check_trip_id
from scoring.shadow import shadow_propensities, shadow_sampled
from stream.events import SCHEMA_VERSION

__all__ = ["ANONYMOUS_USER", "CatalogState", "Ranker", "impression_bytes", "request_rows"]

#: ``user_id`` of impressions served without a user id (the A/B unit was then the session).
ANONYMOUS_USER = "anonymous"
_PHI_NAMES = list(PHI_NAMES)


class CatalogState:
    """The catalog in force (None until loaded: /readyz says 503 until then)."""

    def __init__(self) -> None:
        self.catalog: Catalog | None = None
        self.index: dict[str, int] = {}
        self.loaded_at: float | None = None
        self.error: str | None = None

    def set(self, catalog: Catalog, index: dict[str, int] | None = None) -> None:
        # Our own id → row dict, its keys allocated together: the 200 lookups per request
        # then touch a compact, cache-warm structure instead of strings spread over Trip objects.
        # A hot swap (scoring.catalog_source) builds it aside and passes it in.
        self.index = (
            {tid: row for row, tid in enumerate(catalog.trip_ids.tolist())} if index is None else index
        )
        self.catalog = catalog
        self.loaded_at = time.time()
        self.error = None


@dataclass(frozen=True, slots=True)
class _Served:
    """What an impression needs, captured at request time (arrays are not copied)."""

    request_id: str
    session_id: str
    user_id: str
    segment: str
    policy: str
    variant: str
    model_version: str
    ts: float
    trip_ids: list[str]
    scores: npt.NDArray[np.float64]
    propensities: npt.NDArray[np.float64]
    phi: npt.NDArray[np.float32]
    catalog_version: str
    randomized: npt.NDArray[np.bool_] | None = None  # per item: exploration's uniform draw
    shadow_version: str | None = None  # the candidate that shadow-scored the request (scoring.shadow)
    shadow_propensities: npt.NDArray[np.float64] | None = None


def impression_bytes(s: _Served) -> bytes:
    """The impression record (topic contract v1) plus a ``variant`` field (ignored by older readers).

    Built as the dict :func:`stream.codec.to_dict` makes of an
    :class:`~stream.events.Impression` (the tests check that it decodes with
    :func:`~stream.codec.decode_impression` and re-encodes identically),
    without building the dataclasses first: this runs for every request.
    """
    slate = [
        {"trip_id": tid, "position": pos, "score": score, "propensity": prop, "phi": row}
        for pos, (tid, score, prop, row) in enumerate(
            zip(s.trip_ids, s.scores.tolist(), s.propensities.tolist(), s.phi.tolist(), strict=True)
        )
    ]
    if s.randomized is not None:
        for item, drawn in zip(slate, s.randomized.tolist(), strict=True):
            if drawn:
                item["randomized"] = True
    body = {
        "v": SCHEMA_VERSION,
        "kind": "impression",
        "request_id": s.request_id,
        "session_id": s.session_id,
        "user_id": s.user_id,
        "segment": s.segment,
        "policy": s.policy,
        "model_version": s.model_version,
        "feature_version": FEATURE_VERSION,
        "phi_names": _PHI_NAMES,
        "catalog_version": s.catalog_version,
        "ts": s.ts,
        "slate": slate,
        "variant": s.variant,
    }
    if s.shadow_version is not None and s.shadow_propensities is not None:
        body["shadow"] = {"model_version": s.shadow_version, "propensities": s.shadow_propensities.tolist()}
    return orjson.dumps(body)


class Ranker:
    """Serve one validated :class:`~scoring.requests.RankRequest` (see the module docstring)."""

    def __init__(
        self,
        *,
        catalog: CatalogState,
        models: ModelCache,
        experiments: ExperimentStore,
        log: ImpressionLog,
        metrics: ScoringMetrics,
        topic: str,
        exploration_seed: int = 0,
        clock: Callable[[], float] = time.time,
        today: Callable[[], dt.date] | None = None,
        shadow_sample: float = 0.0,
        global_min_examples: int = 200,
        global_shrinkage: float = 1000.0,
    ) -> None:
        self.catalog = catalog
        self.models = models
        self.experiments = experiments
        self.log = log
        self.metrics = metrics
        self.topic = topic
        self.exploration_seed = exploration_seed
        self.clock = clock
        self.today = today or (lambda: dt.datetime.fromtimestamp(self.clock(), dt.UTC).date())
        self.shadow_sample = (
            shadow_sample  # share of requests shadow-scored by the candidate (scoring.shadow)
        )
        self.global_min_examples = global_min_examples  # segment models shrink towards the global one
        self.global_shrinkage = global_shrinkage

    def rank(self, req: RankRequest, request_id: str | None = None) -> dict[str, Any]:
        """The response body of /v1/rank; logs the impression (if any item was served)."""
        catalog, index = self.catalog.catalog, self.catalog.index  # one version for the whole request
        if catalog is None:
            raise NotReady(None, "no catalog loaded yet")
        request_id = request_id or os.urandom(16).hex()  # 128 random bits; uuid4() costs ~10x more
        variant = self.experiments.current.assign(req.unit)
        today = self.today()
        rows, ignored = request_rows(catalog, today, req, index)
        X = phi(catalog, req.preferences, today, None if rows.size == len(catalog) else rows)
        scored = score_request(
            variant.policy, self.models.get(variant.policy, req.segment), X, req.segment,
            global_model=self.models.get(variant.policy, GLOBAL_SEGMENT) if variant.policy != "rules" else None,
            min_examples=self.global_min_examples, shrinkage=self.global_shrinkage,
        )  # fmt: skip
        if scored.fallback is not None:
            self.metrics.fallbacks.labels(variant.policy, scored.fallback).inc()
        slate = self._slate(scored, req, variant.epsilon, request_id)
        picked = rows[slate.order]
        trip_ids = catalog.trip_ids[picked].tolist()
        scores = scored.scores[slate.order]
        items = [
            {"trip_id": tid, "position": pos, "score": score, "propensity": prop}
            for pos, (tid, score, prop) in enumerate(
                zip(trip_ids, scores.tolist(), slate.propensities.tolist(), strict=True)
            )
        ]
        if items:
            shadow = self._shadow(variant.policy, req, X, slate, variant.epsilon, request_id)
            served = _Served(
                request_id, req.session_id, req.user or ANONYMOUS_USER, req.segment, scored.policy,
                variant.name, scored.model_version, self.clock(), trip_ids, scores, slate.propensities,
                X[slate.order], catalog.version, slate.randomized, *shadow,
            )  # fmt: skip
            self.log.submit(self.topic, req.session_id.encode(), lambda: impression_bytes(served))
            self.metrics.impression(variant.name, req.segment)
        return {
            "request_id": request_id,
            "variant": variant.name,
            "policy": scored.policy,
            "model_version": scored.model_version,
            "segment": req.segment,
            "explore": req.explore,
            "explored": slate.explored,
            "candidates": int(rows.size),
            "items": items,
            "ignored_trip_ids": ignored,
            "catalog_version": catalog.version,
        }

    def _shadow(
        self,
        policy: str,
        req: RankRequest,
        X: npt.NDArray[np.float32],
        slate: Slate,
        epsilon: float,
        request_id: str,
    ) -> tuple[str | None, npt.NDArray[np.float64] | None]:
        """The candidate's label and propensities of the served slate, for a sampled request (else Nones)."""
        if not self.shadow_sample or not shadow_sampled(request_id, self.shadow_sample):
            return None, None
        candidate = self.models.candidate(policy, req.segment)
        if candidate is None:
            return None, None
        scores = candidate.score(X, req.segment)
        if scores.shape != (X.shape[0],) or not np.isfinite(scores).all():
            return None, None
        self.metrics.shadow.labels(policy).inc()
        return candidate.label, shadow_propensities(scores, slate.order, epsilon if req.explore else 0.0)

    def _slate(self, scored: Scored, req: RankRequest, epsilon: float, request_id: str) -> Slate:
        if not req.explore:
            return deterministic(scored.scores, req.k)
        rng = request_rng(request_id, self.exploration_seed)
        if scored.exploration == "pmf":
            return plackett_luce(scored.scores, req.k, rng)
        return epsilon_greedy(scored.scores, req.k, epsilon, rng)


def request_rows(
    catalog: Catalog, today: dt.date, req: RankRequest, index: dict[str, int] | None = None
) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Candidate rows (catalog order) and the requested ids the catalog does not know.

    Equal to :func:`scoring.filters.candidate_rows` of the known ids; the common
    case (explicit ids, no filters, no travel date) takes a faster path.
    """
    if req.trip_ids is None:
        return candidate_rows(catalog, today, req.filters, req.preferences, None), []
    get = (index if index is not None else catalog.index).get
    try:
        found = [get(t) for t in req.trip_ids]
    except TypeError:  # an unhashable element (a JSON array or object)
        found = [get(t) if isinstance(t, str) else None for t in req.trip_ids]
    ignored: list[str] = []
    if None in found:
        ignored = [
            check_trip_id(t, i) for i, (t, r) in enumerate(zip(req.trip_ids, found, strict=True)) if r is None
        ]
        found = [r for r in found if r is not None]
    if req.filters is not None or req.preferences.travel_date is not None:
        known = [str(catalog.trip_ids[r]) for r in found]
        return candidate_rows(catalog, today, req.filters, req.preferences, known), ignored
    rows = np.array(found, dtype=np.intp)
    rows.sort()
    if rows.size > 1 and (rows[1:] == rows[:-1]).any():
        rows = np.unique(rows)
    return rows[catalog.departure_day[rows] >= day_number(today)], ignored
