"""VW's SquareCB pmf over φ rows with numpy: the scoring worker's fast path for ``vw`` models.

:meth:`bandit.VWPolicy.score_many` builds one VW example per candidate and
asks VW for the pmf: ~7.5 µs per candidate, so ~10 ms of CPU for a request
over a 1,500-trip catalog, two thirds of the scoring worker's CPU in the
soak (``smarttrip bench soak``, py-spy). Serving needs no VW machinery: with
no shared context (the scoring worker passes none, so ``-q ua`` adds no
interaction), VW's predicted cost of an action is linear in its φ row,

.. math::

    \\hat y_a = c + \\sum_j w_{h(j)} x_{aj},

where :math:`h(j)` is the hashed slot of φ column ``j`` (the policy's probe
indices) and :math:`c` the constant feature's weight, the same for every
action. SquareCB (Foster & Rakhlin 2020) then gives every action but the
greedy one :math:`g = \\arg\\min_a \\hat y_a` (the first, on ties)

.. math::

    p_a = \\frac{1}{K + \\gamma (\\hat y_a - \\hat y_g)}, \\qquad p_g = 1 - \\sum_{a \\ne g} p_a,

with :math:`K` the number of actions. :math:`c` cancels, and :math:`\\gamma`
(``gamma_scale · t^gamma_exponent``, with VW's own example counter ``t``) is
read once per loaded model from VW itself: the pmf of a two-action probe
whose predicted costs differ by exactly 1 is ``1 / (2 + γ)``. The result
equals ``score_many`` to float32 rounding (VW computes in float32; checked in
``tests/scoring/test_vw_fast.py``): every non-greedy probability to ~1e-5
relative; the greedy one, which VW gets as 1 minus a float32 sum of the
``K - 1`` others, to that sum's rounding (≤ K·2⁻²³; ours sums in float64). On
exact ties of the greedy cost (an untrained model) VW's rounding can put the
greedy action last, ours leaves the ties equal. And the scorer holds copies of the
weights, so it never touches the VW workspace while serving.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from bandit.vw_policy import VWPolicy

__all__ = ["squarecb_gamma", "squarecb_pmf", "vw_scorer"]

FloatArray = npt.NDArray[np.float64]


def squarecb_pmf(costs: FloatArray, gamma: float) -> FloatArray:
    """SquareCB's pmf over actions with predicted ``costs`` (see the module docstring).

    >>> squarecb_pmf(np.array([0.5, 0.0, 1.0]), 2.0).round(4).tolist()
    [0.25, 0.55, 0.2]
    """
    out = np.zeros(len(costs))
    if len(costs) == 0:
        return out
    greedy = int(np.argmin(costs))
    out[:] = 1.0 / (len(costs) + gamma * (costs - costs[greedy]))
    out[greedy] = 0.0
    out[greedy] = 1.0 - out.sum()
    return out


def _linear_weights(policy: VWPolicy) -> FloatArray:
    """The weight of each φ column's hashed slot (column 0 of VW's table: the weight, not its state)."""
    table = policy.model_weights()
    slots = policy._index.astype(np.int64) & (len(table) - 1)  # the policy's probe hashes
    weights: FloatArray = table[slots].astype(np.float64)
    return weights


def squarecb_gamma(policy: VWPolicy, weights: FloatArray | None = None) -> float:
    """γ of the loaded ``policy``, read from VW's pmf over a probe of two actions 1 cost unit apart.

    Returns 0 for a model whose weights are all zero (every action ties; γ plays no role).
    """
    w = _linear_weights(policy) if weights is None else weights
    j = int(np.argmax(np.abs(w)))
    if w[j] == 0.0:
        return 0.0
    probe = np.zeros((2, len(w)))
    probe[1, j] = 1.0 / abs(w[j])  # costs c and c ± 1
    pmf = policy.score_many(probe)
    return max(0.0, 1.0 / float(pmf.min()) - 2.0)


def vw_scorer(policy: VWPolicy) -> Callable[[npt.NDArray[np.float32], str], FloatArray] | None:
    """A scorer equal to ``policy.score_many`` (no context) for SquareCB policies; None for others."""
    if policy.exploration != "squarecb":
        return None
    w = _linear_weights(policy)
    gamma = squarecb_gamma(policy, w)

    def vw(X: npt.NDArray[np.float32], segment: str) -> FloatArray:
        return squarecb_pmf(X.astype(np.float64) @ w, gamma)

    return vw
