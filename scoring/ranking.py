"""One ranking request end to end: filter, build φ, score, take the top k."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.catalog import Catalog
from features.context import Preferences
from features.phi import phi
from scoring.filters import Filters, candidate_rows
from scoring.linear import LinearScorer
from scoring.topk import top_k

__all__ = ["RankedList", "rank_catalog"]


@dataclass(frozen=True)
class RankedList:
    rows: npt.NDArray[np.intp]  # catalog rows, best first
    scores: npt.NDArray[np.float64]
    phi: npt.NDArray[np.float32]  # φ of the ranked rows, in ranked order
    n_candidates: int

    def trip_ids(self, catalog: Catalog) -> list[str]:
        return [str(catalog.trip_ids[r]) for r in self.rows]


def rank_catalog(
    catalog: Catalog,
    prefs: Preferences,
    today: dt.date,
    scorer: LinearScorer,
    k: int,
    *,
    filters: Filters | None = None,
    trip_ids: Sequence[str] | None = None,
) -> RankedList:
    rows = candidate_rows(catalog, today, filters, prefs, trip_ids)
    X = phi(catalog, prefs, today, None if rows.size == len(catalog) else rows)
    scores = scorer.score_many(X)
    order = top_k(scores, k)
    return RankedList(rows=rows[order], scores=scores[order], phi=X[order], n_candidates=int(rows.size))
