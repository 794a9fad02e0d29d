r"""Exploration over a ranked list, with the exact propensity of every placement.

Off-policy estimators (IPS, SNIPS, DR in :mod:`bandit`) divide by the
probability with which the logging policy made the choice that was logged,
so that probability must be exact for the sampling actually done. Two
samplers build a slate of ``m = min(k, n)`` of ``n`` candidates one position
at a time; ``R_j`` is the set of candidates not yet placed before position
``j`` (``|R_j| = n − j``).

**ε-greedy per position** (policies ``rules``, ``logistic``, ``linucb``): at
position ``j``, with probability ε place a candidate drawn uniformly from
``R_j``, otherwise place ``b_j``, the best of ``R_j`` by score (ties: the
lower candidate index, the rule of :func:`scoring.topk.top_k`). The logged
propensity of the candidate ``c`` placed at ``j`` is

.. math::  p_j = P(c \text{ at } j \mid \text{positions } 0..j{-}1) = \frac{ε}{|R_j|} + (1 − ε)\,[c = b_j],

always in (0, 1] (ε = 0 gives 1 for every greedy placement).

**Plackett–Luce over a pmf** (policy ``vw``, whose ``cb_explore_adf`` pmf
is the exploration distribution): at position ``j`` place ``c ∈ R_j`` with
probability ``w_c / Σ_{r ∈ R_j} w_r`` (sequential sampling without
replacement); that ratio is the logged propensity. Position 0 is therefore
drawn exactly from VW's pmf. If every remaining weight is 0 the pick is
uniform over ``R_j`` with propensity ``1/|R_j|``.

In both cases the propensity is *conditional on the slate above it*; the
probability of the whole top-``j`` prefix is the product ``∏_{i≤j} p_i``.
With ``explore=false`` the slate is the deterministic greedy ranking
(``top_k`` of the scores, or of the pmf for ``vw``) and every propensity is 1.

Randomness comes from a :class:`random.Random` seeded per request by
:func:`request_rng` (a hash of the worker's exploration seed and the
request id), so a logged request can be re-drawn exactly.

>>> import numpy as np
>>> s = epsilon_greedy(np.array([0.1, 0.9, 0.5]), 2, 0.0, request_rng("r1"))
>>> s.order.tolist(), s.propensities.tolist()
([1, 2], [1.0, 1.0])
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.topk import top_k

__all__ = ["Slate", "deterministic", "epsilon_greedy", "plackett_luce", "request_rng"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Slate:
    """A sampled ranking: candidate indices best-first and each placement's propensity."""

    order: npt.NDArray[np.intp]
    propensities: FloatArray
    explored: bool  # the slate differs from the deterministic (greedy) ranking
    #: Per position: the trip was drawn uniformly from those left (ε-greedy's uniform
    #: branch), so its relevance is independent of the position — what the learners'
    #: examination estimate (:mod:`bandit.position_bias`) needs. None: no such draws.
    randomized: npt.NDArray[np.bool_] | None = None


def request_rng(request_id: str, seed: int = 0) -> random.Random:
    """The request's own generator: Mersenne Twister seeded with BLAKE2b-64 of ``seed:request_id``."""
    digest = hashlib.blake2b(f"{seed}:{request_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))  # noqa: S311 - exploration, not security


def deterministic(scores: FloatArray, k: int) -> Slate:
    """The greedy ranking (``top_k``) with every propensity 1."""
    order = top_k(scores, k)
    return Slate(order, np.ones(len(order)), False)


def epsilon_greedy(scores: FloatArray, k: int, epsilon: float, rng: random.Random) -> Slate:
    """ε-greedy per position (see the module docstring for the exact propensity)."""
    n = int(scores.shape[0])
    m = min(k, n)
    if m <= 0:
        return Slate(np.empty(0, dtype=np.intp), np.empty(0), False)
    if epsilon <= 0.0:
        return deterministic(scores, k)
    # At most j candidates are placed before position j, so the best remaining one is
    # always among the first j + 1 of the greedy order: the top m suffice.
    greedy = top_k(scores, m).tolist()
    order: list[int] = []
    props: list[float] = []
    uniform: list[bool] = []
    taken: set[int] = set()
    ptr = 0
    explored = False
    for j in range(m):
        remaining = n - j
        while greedy[ptr] in taken:
            ptr += 1
        best = greedy[ptr]
        drawn = rng.random() < epsilon
        if drawn:
            pick = _uniform_remaining(rng, n, taken)
            explored = explored or pick != best
        else:
            pick = best
        uniform.append(drawn)
        props.append(epsilon / remaining + ((1.0 - epsilon) if pick == best else 0.0))
        order.append(pick)
        taken.add(pick)
    return Slate(np.array(order, dtype=np.intp), np.array(props), explored, np.array(uniform, dtype=np.bool_))


def _uniform_remaining(rng: random.Random, n: int, taken: set[int]) -> int:
    """A uniform draw from ``range(n) - taken`` (rejection while most remain, else explicit)."""
    if 2 * len(taken) <= n:
        while True:
            c = rng.randrange(n)
            if c not in taken:
                return c
    rest = [i for i in range(n) if i not in taken]
    return rest[rng.randrange(len(rest))]


def plackett_luce(weights: FloatArray, k: int, rng: random.Random) -> Slate:
    """Sequential sampling without replacement ∝ ``weights`` (see the module docstring)."""
    w = np.array(weights, dtype=np.float64)
    n = int(w.shape[0])
    m = min(k, n)
    if m <= 0:
        return Slate(np.empty(0, dtype=np.intp), np.empty(0), False)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights: must be finite and >= 0")
    greedy = top_k(w, m).tolist()
    order: list[int] = []
    props: list[float] = []
    alive = np.ones(n, dtype=bool)
    for j in range(m):
        total = float(w.sum())
        if total > 0.0:
            cum = np.cumsum(w)
            u = rng.random() * total
            pick = int(np.searchsorted(cum, u, side="right"))
            if pick >= n or w[pick] <= 0.0:  # u rounded up to the total: the last positive weight
                pick = int(np.flatnonzero(w > 0.0)[-1])
            p = float(w[pick]) / total
        else:
            rest = np.flatnonzero(alive)
            pick = int(rest[rng.randrange(len(rest))])
            p = 1.0 / (n - j)
        order.append(pick)
        props.append(min(p, 1.0))
        w[pick] = 0.0
        alive[pick] = False
    return Slate(np.array(order, dtype=np.intp), np.array(props), order != greedy)
