r"""Shadow scoring: what a not-yet-promoted candidate would have done with a served slate.

With the promotion gate on (``SMARTTRIP_MODEL_SERVE=promoted``), the scoring
worker serves the promoted model (the champion) and, for a sample of requests
(``SMARTTRIP_SHADOW_SAMPLE``), also scores the *whole* candidate set with the
learner's latest version (the challenger, loaded by
:class:`scoring.model_cache.ModelCache` next to the served one). It serves
nothing from it: the impression gets a ``shadow`` field with the challenger's
version and, for every position ``j`` of the served slate, the probability
that the challenger — ε-greedy per position over all ``n`` candidates, the
served rule (:mod:`scoring.exploration`) — would have placed the served item
there, given the items above it:

.. math::  π_c(j) = \frac{ε}{n − j} + (1 − ε)\,[\text{item}_j = \text{best remaining by the challenger}].

With the logged propensity (the champion's own, exact), the gate
(:mod:`stream.promotion_gate`) then has an exact importance weight
``π_c(j) / p_j`` over the full candidate set, instead of re-ranking the
logged slate — which cannot see trips the champion never showed.

>>> import numpy as np
>>> shadow_propensities(np.array([0.1, 0.9, 0.5]), np.array([1, 2]), 0.0).tolist()
[1.0, 1.0]
>>> shadow_propensities(np.array([0.9, 0.1, 0.5]), np.array([1, 2]), 0.3).round(3).tolist()
[0.1, 0.15]
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

from scoring.topk import top_k

__all__ = ["shadow_propensities", "shadow_sampled"]


def shadow_propensities(
    scores: npt.NDArray[np.float64], order: npt.NDArray[np.intp], epsilon: float
) -> npt.NDArray[np.float64]:
    """π of an ε-greedy policy with ``scores`` placing ``order[j]`` at position ``j`` after ``order[:j]``."""
    n, m = int(scores.shape[0]), int(order.shape[0])
    # At most j candidates are placed before position j, so the best remaining one is
    # among the first j + 1 of the greedy order (as in scoring.exploration.epsilon_greedy).
    greedy = top_k(scores, m).tolist()
    out = np.empty(m)
    taken: set[int] = set()
    ptr = 0
    for j, item in enumerate(order.tolist()):
        while greedy[ptr] in taken:
            ptr += 1
        out[j] = epsilon / (n - j) + ((1.0 - epsilon) if item == greedy[ptr] else 0.0)
        taken.add(item)
    return out


def shadow_sampled(request_id: str, share: float) -> bool:
    """Whether ``request_id`` is in the shadow sample (a stable hash, so every worker agrees)."""
    return share > 0 and (share >= 1 or zlib.crc32(request_id.encode()) < share * 2**32)
