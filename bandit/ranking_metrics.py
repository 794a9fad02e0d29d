"""Offline ranking metrics of logged slates: CTR, MRR, NDCG@10, coverage, intra-list diversity.

Input is one row per shown item, grouped into slates (one request). Per
slate, items are ordered by displayed position; the relevance of an item is
its reward (clicks, saves, bookings… as :mod:`stream.labeling` values them).

CTR
    clicks / shown items.
MRR
    mean over slates of ``1 / (1 + rank of the first click)`` (0 without a click).
NDCG@k
    ``DCG@k / IDCG@k`` with ``DCG = Σ_{rank < k} rel / log2(rank + 2)`` and the
    ideal DCG of the same slate's relevances sorted; slates without any
    relevance count as 0 (so NDCG is comparable across policies).
Coverage
    distinct items shown, divided by the catalog size when given.
Intra-list diversity
    mean over slates of the mean pairwise cosine distance ``1 − cos`` of the
    shown items' feature rows (Ziegler et al. 2005).

>>> m = ranking_metrics(slate=[0, 0, 0, 1, 1], position=[0, 1, 2, 0, 1], reward=[0, 1, 0, 0, 0],
...                     clicked=[0, 1, 0, 0, 0], item=[1, 2, 3, 1, 4])
>>> m.ctr, m.mrr, m.coverage_items
(0.2, 0.25, 4)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from bandit.ope_validation import OPEInputError, as_float_vector, as_int_vector, check_same_length

__all__ = ["RankingMetrics", "ranking_metrics"]


@dataclass(frozen=True, slots=True)
class RankingMetrics:
    slates: int
    items: int
    ctr: float
    mrr: float
    ndcg: float
    coverage_items: int
    coverage: float | None
    diversity: float | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def ranking_metrics(
    *,
    slate: npt.ArrayLike,
    position: npt.ArrayLike,
    reward: npt.ArrayLike,
    clicked: npt.ArrayLike,
    item: npt.ArrayLike,
    features: npt.ArrayLike | None = None,
    k: int = 10,
    catalog_size: int | None = None,
) -> RankingMetrics:
    """Metrics of the slates (see the module docstring); ids are integers (e.g. factorised strings)."""
    s = as_int_vector(slate, "slate")
    pos = as_int_vector(position, "position")
    rel = as_float_vector(reward, "reward")
    clk = as_float_vector(clicked, "clicked") > 0
    it = as_int_vector(item, "item")
    check_same_length(slate=s, position=pos, reward=rel, clicked=clk, item=it)
    if k < 1:
        raise OPEInputError("k", f"must be >= 1, got {k}")
    order = np.lexsort((pos, s))
    s, pos, rel, clk, it = s[order], pos[order], rel[order], clk[order], it[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    rank = np.arange(len(s)) - np.repeat(starts, np.diff(np.r_[starts, len(s)]))
    n_slates = len(starts)
    slate_idx = np.repeat(np.arange(n_slates), np.diff(np.r_[starts, len(s)]))
    # MRR: first click per slate.
    first = np.full(n_slates, np.inf)
    np.minimum.at(first, slate_idx[clk], rank[clk].astype(np.float64))
    mrr = float(np.mean(np.where(np.isfinite(first), 1.0 / (first + 1.0), 0.0)))
    # NDCG@k.
    discount = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
    dcg = np.bincount(slate_idx, weights=rel * discount, minlength=n_slates)
    ideal_rel = np.empty_like(rel)
    for a, b in zip(starts, np.r_[starts[1:], len(s)], strict=True):
        ideal_rel[a:b] = np.sort(rel[a:b])[::-1]
    idcg = np.bincount(slate_idx, weights=ideal_rel * discount, minlength=n_slates)
    ndcg = float(np.mean(np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)))
    distinct = int(np.unique(it).size)
    diversity = None
    if features is not None:
        X = np.asarray(features, dtype=np.float64)[order]
        if X.ndim != 2 or len(X) != len(s):
            raise OPEInputError("features", f"must have shape (n_items, d) with n_items = {len(s)}")
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        U = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
        per_slate = []
        for a, b in zip(starts, np.r_[starts[1:], len(s)], strict=True):
            m = b - a
            if m < 2:
                continue
            sim = U[a:b] @ U[a:b].T
            per_slate.append(float(np.sum(1.0 - sim[np.triu_indices(m, 1)]) / (m * (m - 1) / 2)))
        diversity = float(np.mean(per_slate)) if per_slate else None
    return RankingMetrics(
        n_slates, len(s), float(clk.mean()), mrr, ndcg, distinct,
        distinct / catalog_size if catalog_size else None, diversity,
    )  # fmt: skip
