"""The policies a variant can serve, and how a request's scores are made.

=========  ===================================================  ========================
policy     scores of the candidates' φ rows                     exploration
=========  ===================================================  ========================
rules      ``Φ · w_rules`` (the fixed SCORING_WEIGHTS)          ε-greedy per position
logistic   logits of the live :class:`~bandit.LogisticLearner`  ε-greedy per position
linucb     UCB scores ``Φθ̂ + α‖x‖_{A⁻¹}`` of the live LinUCB    ε-greedy per position
vw         the ``cb_explore_adf`` pmf of the live VW policy     ε-greedy per position
=========  ===================================================  ========================

(:mod:`scoring.exploration` defines the samplers and their propensities.)
VW's SquareCB pmf falls strictly with the predicted cost, so ranking by it
is ranking by VW's predicted reward; it is explored like the others rather
than sampled Plackett–Luce over the pmf, because with hundreds of candidates
that pmf is nearly flat until γ has grown for millions of examples, and the
slates would be almost random (the closed-loop simulation measured 20 % of
the oracle CTR that way, 82 % with ε-greedy).

A learned policy is served from the model of (policy, request segment) in
the live cache (:mod:`scoring.model_cache`); a :class:`~bandit.SegmentedLearner`
blob is scored with the request's segment. When there is no model for the
pair yet — Redis never reached, or nothing published — or a model returns a
non-finite score, the request is served by ``rules`` instead: the response
and the impression then say ``policy: "rules"`` (the variant is unchanged),
and ``smarttrip_scoring_policy_fallbacks_total`` counts it.

``model_version`` names what scored the slate: ``"<policy>/<segment>/v<N>"``
for a stored model, ``"rules/v1"`` for the fixed weights, and
``"<segment model>+<policy>/_all/v<M>"`` when a segment model was blended
with the policy's global model (see :func:`score_request`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from bandit.lin_ucb import LinUCB
from bandit.logistic import LogisticLearner
from bandit.protocol import Learner
from bandit.segments import SegmentedLearner, shrinkage_weight
from bandit.vw_policy import VWPolicy
from scoring.linear import LinearScorer, rule_scorer
from scoring.vw_fast import vw_scorer

__all__ = [
    "EXPECTED_KINDS",
    "RULES_VERSION",
    "LoadedModel",
    "Scored",
    "fast_scorer",
    "kind_matches",
    "score_request",
]

FloatArray = npt.NDArray[np.float64]
Exploration = Literal["epsilon", "pmf"]

RULES_VERSION: Final = "rules/v1"
#: The learner kind (``bandit`` registry name) each stored policy must hold.
EXPECTED_KINDS: Final[dict[str, str]] = {"logistic": "logistic", "linucb": "lin_ucb", "vw": "vw_cb"}
_RULES: Final[LinearScorer] = rule_scorer()


Scorer = Callable[[npt.NDArray[np.float32], str], FloatArray]


@dataclass(frozen=True)
class LoadedModel:
    """A deserialised model of the store, ready to score (never mutated once loaded)."""

    policy: str
    segment: str
    version: int
    learner: Learner | SegmentedLearner
    created_at: float
    loaded_at: float
    scorer: Scorer | None = None  # a faster equivalent of learner.score_many (see fast_scorer)

    @property
    def label(self) -> str:
        return f"{self.policy}/{self.segment}/v{self.version}"

    def score(self, X: npt.NDArray[np.float32], segment: str) -> FloatArray:
        if self.scorer is not None:
            return self.scorer(X, segment)
        if isinstance(self.learner, SegmentedLearner):
            return self.learner.score_many(X, segment=segment)
        return self.learner.score_many(X)


def fast_scorer(learner: Learner | SegmentedLearner) -> Scorer | None:
    """The learner's ``score_many`` with its parameters copied out once, for φ rows we built.

    φ is finite by construction, so the per-request validation copy of
    :func:`bandit.protocol.as_matrix` can be skipped; the arithmetic is the
    learner's own (LinUCB: ``Xθ̂ + α·sqrt(rowsum((XA⁻¹)∘X))``; logistic: ``Xw``),
    equal to ``score_many`` to rounding (checked in the tests); VW (SquareCB): the pmf
    computed with numpy from VW's weights (:mod:`scoring.vw_fast`). Other learners: None.
    """
    if isinstance(learner, LinUCB):
        theta, a_inv, alpha = learner.theta, learner.A_inv, learner.alpha

        def linucb(X: npt.NDArray[np.float32], segment: str) -> FloatArray:
            Xd = X.astype(np.float64)
            mean: FloatArray = Xd @ theta
            if alpha == 0.0:
                return mean
            var = np.einsum("ij,ij->i", Xd @ a_inv, Xd)
            ucb: FloatArray = mean + alpha * np.sqrt(np.maximum(var, 0.0, out=var))
            return ucb

        return linucb
    if isinstance(learner, LogisticLearner):
        w = learner.weight_vector

        def logistic(X: npt.NDArray[np.float32], segment: str) -> FloatArray:
            out: FloatArray = X.astype(np.float64) @ w
            return out

        return logistic
    if isinstance(learner, VWPolicy):
        return vw_scorer(learner)
    return None


def kind_matches(policy: str, learner: Learner | SegmentedLearner) -> bool:
    """Whether ``learner`` is the kind the store's ``policy`` name promises."""
    want = EXPECTED_KINDS.get(policy)
    if isinstance(learner, SegmentedLearner):
        return learner.base.kind == want
    return learner.kind == want


@dataclass(frozen=True, slots=True)
class Scored:
    """What scored a request: the served policy, its model version and the scores."""

    policy: str
    model_version: str
    scores: FloatArray
    exploration: Exploration
    fallback: str | None  # why rules served instead of the variant's policy (None: it did not)


def score_request(
    policy: str,
    model: LoadedModel | None,
    X: npt.NDArray[np.float32],
    segment: str,
    *,
    global_model: LoadedModel | None = None,
    min_examples: int = 200,
    shrinkage: float = 1000.0,
) -> Scored:
    """Scores of the candidates under ``policy`` (``model`` from the cache), or the rules fallback.

    With a global model of the policy (``SMARTTRIP_LEARN_SCOPE=global`` learner), the segment
    model is shrunk towards it by the rule of :mod:`bandit.segments`: the global model alone
    below ``min_examples`` segment examples, else ``w·segment + (1 − w)·global`` with
    ``w = n / (n + shrinkage)``.
    """
    if policy == "rules":
        return _rules(X, None)
    w = 1.0 if global_model is None else 0.0
    if model is not None and global_model is not None:
        w = shrinkage_weight(model.learner.n_examples, min_examples=min_examples, shrinkage=shrinkage)
    if w == 0.0:
        model, w = global_model, 1.0
    if model is None:
        return _rules(X, "no_model")
    scores = model.score(X, segment)
    label = model.label
    if w < 1.0 and global_model is not None:
        scores = w * scores + (1.0 - w) * global_model.score(X, segment)
        label = f"{model.label}+{global_model.label}"
    if scores.shape != (X.shape[0],) or not np.isfinite(scores).all():
        return _rules(X, "bad_scores")
    if policy == "vw" and (scores < 0).any():
        return _rules(X, "bad_scores")
    return Scored(policy, label, scores, "epsilon", None)


def _rules(X: npt.NDArray[np.float32], why: str | None) -> Scored:
    return Scored("rules", RULES_VERSION, _RULES.score_many(X), "epsilon", why)
