"""Online logistic regression on φ, on River's ``linear_model.LogisticRegression``.

The model is ``P(engaged | x) = σ(w·x)`` with one weight per φ column; the
always-on ``BASE_SCORE`` column plays the intercept (River's own intercept is
disabled, ``intercept_lr=0``, so every weight is a named φ weight and is
regularised alike). Trained by SGD, one River ``learn_one`` per example:

- loss: log loss with a *soft* label ``y = click / ê(position)`` (see
  :mod:`bandit.position_bias`; ``click = reward > 0``), i.e.
  ``ℓ(z) = log(1 + e^z) − y z`` with gradient ``σ(z) − y``, unbiased for the
  position-free relevance under the position-based click model;
- L2 penalty ``l2`` and River's gradient clipping ``clip_gradient``;
- learning-rate schedule ``lr / (t + 1)^lr_power`` (River's
  ``optim.schedulers.InverseScaling``; ``lr_power = 0`` is constant);
- bounds: after every step each weight is projected onto
  ``[-weight_bound, weight_bound]`` (projected SGD), so a burst of odd traffic
  cannot produce an absurd model;
- warm start: ``w₀ = prior_scale × prior`` (e.g. the rule weights, in logits
  per rule point), with ``BASE_SCORE`` set to ``prior_intercept`` when given
  so the initial click rate is calibrated; ranking by ``w₀`` is the rule
  ranking whatever the intercept, since ``BASE_SCORE`` is constant.

River's ``learn_many`` takes *one* mean-gradient step per batch, so
:meth:`LogisticLearner.learn_many` is the loop of ``learn_one`` (the protocol).
River objects are not serialised: the weights (in feature order) and the
optimizer's step counter are stored as arrays/JSON and the River model is
rebuilt from the constructor arguments, so a restored learner continues
bit-identically (same weights, same learning rate at the next step).

References
----------
Bottou (2012). "Stochastic gradient descent tricks." Neural Networks: Tricks of the Trade.
Joachims, Swaminathan & Schnabel (2017). "Unbiased learning-to-rank with biased feedback." WSDM.

Examples
--------
>>> import numpy as np
>>> from scoring.weights import SCORING_WEIGHTS
>>> model = LogisticLearner(prior=SCORING_WEIGHTS, prior_scale=0.05, prior_intercept=-3.0)
>>> round(model.weights["THEME_FULL"], 2), model.weights["BASE_SCORE"]
(1.25, -3.0)
>>> rng = np.random.default_rng(0)
>>> X = (rng.random((500, 20)) < 0.3).astype(np.float32)
>>> X[:, 0] = 1.0
>>> model.learn_many(X, (rng.random(500) < 0.2).astype(float))
>>> model.n_examples, model.predict_proba_many(X[:2]).round(3).tolist()
(500, [0.185, 0.123])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from river import linear_model, optim, utils

from bandit._format import Unpacked, require
from bandit.errors import LearnerConfigError, ModelFormatError
from bandit.position_bias import PositionBias
from bandit.protocol import DEFAULT_FEATURES, BaseLearner, Batch, as_matrix, prior_vector, register

__all__ = ["INTERCEPT_FEATURE", "LogisticLearner", "SoftLabelLog"]

FloatArray = npt.NDArray[np.float64]
INTERCEPT_FEATURE = "BASE_SCORE"


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class SoftLabelLog(optim.losses.BinaryLoss):
    """Log loss for soft labels ``y ≥ 0``: ``log(1 + e^z) − y z``, gradient ``σ(z) − y``.

    Equal to River's ``optim.losses.Log`` for ``y ∈ {0, 1}``; an IPW label
    ``click / ê`` may exceed 1.

    >>> SoftLabelLog().gradient(1.0, 0.0), SoftLabelLog().gradient(2.0, 0.0)
    (-0.5, -1.5)
    """

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        z = np.asarray(y_pred, dtype=np.float64)
        return np.logaddexp(0.0, z) - np.asarray(y_true, dtype=np.float64) * z

    def gradient(self, y_true: Any, y_pred: Any) -> Any:
        if isinstance(y_pred, np.ndarray):
            return 1.0 / (1.0 + np.exp(-y_pred)) - y_true
        return _sigmoid(float(y_pred)) - float(y_true)

    def mean_func(self, y_pred: Any) -> Any:
        if isinstance(y_pred, np.ndarray):
            return 1.0 / (1.0 + np.exp(-y_pred))
        return _sigmoid(float(y_pred))


def _number(value: object, name: str, *, low: float, strict: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):  # type: ignore[operator]
        raise LearnerConfigError(
            name, f"must be a finite number {'>' if strict else '>='} {low}, got {value!r}"
        )
    return float(value)  # type: ignore[arg-type]


@register("logistic")
class LogisticLearner(BaseLearner):
    """Position-debiased online logistic regression on φ (River SGD).

    Parameters
    ----------
    lr, lr_power
        Learning rate ``lr / (t + 1)^lr_power`` at step t.
    l2
        L2 penalty on every weight (``BASE_SCORE`` included).
    weight_bound
        Each weight is kept in ``[-weight_bound, weight_bound]``.
    clip_gradient
        Bound on the absolute per-example loss gradient (River's).
    prior, prior_scale, prior_intercept
        Warm start ``prior_scale × prior`` (names absent are 0); the
        ``BASE_SCORE`` weight is set to ``prior_intercept`` when given.
    feature_names, seed, position_bias, examination_floor, examination_strength, max_position
        See :class:`bandit.protocol.BaseLearner`. SGD here is deterministic;
        ``seed`` is kept for the protocol.
    """

    def __init__(
        self,
        *,
        lr: float = 0.05,
        lr_power: float = 0.25,
        l2: float = 1e-5,
        weight_bound: float = 10.0,
        clip_gradient: float = 1e6,
        prior: Mapping[str, float] | None = None,
        prior_scale: float = 0.05,
        prior_intercept: float | None = None,
        feature_names: Sequence[str] = DEFAULT_FEATURES,
        seed: int = 0,
        position_bias: PositionBias = "estimated",
        examination_floor: float = 0.05,
        examination_strength: float = 10.0,
        max_position: int = 20,
    ) -> None:
        super().__init__(
            feature_names=feature_names,
            seed=seed,
            position_bias=position_bias,
            examination_floor=examination_floor,
            examination_strength=examination_strength,
            max_position=max_position,
        )
        self.lr = _number(lr, "lr", low=0.0, strict=True)
        self.lr_power = _number(lr_power, "lr_power", low=0.0, strict=False)
        self.l2 = _number(l2, "l2", low=0.0, strict=False)
        self.weight_bound = _number(weight_bound, "weight_bound", low=0.0, strict=True)
        self.clip_gradient = _number(clip_gradient, "clip_gradient", low=0.0, strict=True)
        self.prior = dict(prior) if prior is not None else None
        self.prior_scale = prior_scale
        self.prior_intercept = prior_intercept
        w0 = prior_vector(self.prior, prior_scale, self.feature_names)
        if prior_intercept is not None:
            _number(prior_intercept, "prior_intercept", low=-math.inf, strict=False)
            if INTERCEPT_FEATURE not in self.feature_names:
                raise LearnerConfigError("prior_intercept", f"needs a {INTERCEPT_FEATURE} feature")
            w0[self.feature_names.index(INTERCEPT_FEATURE)] = float(prior_intercept)
        self._model = self._new_model(np.clip(w0, -self.weight_bound, self.weight_bound), 0)
        self._w_cache: FloatArray | None = None

    def _new_model(self, w: FloatArray, n_iterations: int) -> Any:
        model = linear_model.LogisticRegression(
            optimizer=optim.SGD(optim.schedulers.InverseScaling(self.lr, self.lr_power)),
            loss=SoftLabelLog(),
            l2=self.l2,
            intercept_init=0.0,
            intercept_lr=0.0,
            clip_gradient=self.clip_gradient,
        )
        # River keeps weights in insertion order; always insert in feature order so
        # its dot products sum in the same order after a restore.
        model._weights = utils.VectorDict(dict(zip(self.feature_names, w.tolist(), strict=True)))
        model.optimizer.n_iterations = n_iterations
        return model

    # -- serving
    @property
    def weight_vector(self) -> FloatArray:
        """Weights in ``feature_names`` order (a copy)."""
        return self._w().copy()

    @property
    def weights(self) -> dict[str, float]:
        """Weights by feature name (logits per unit of the feature)."""
        return {n: float(v) for n, v in zip(self.feature_names, self._w(), strict=True)}

    @property
    def steps(self) -> int:
        """SGD steps taken (drives the learning-rate schedule)."""
        return int(self._model.optimizer.n_iterations)

    def _w(self) -> FloatArray:
        if self._w_cache is None:
            self._w_cache = np.asarray(
                self._model._weights.to_numpy(list(self.feature_names)), dtype=np.float64
            )
        return self._w_cache

    def score_many(self, X: npt.ArrayLike) -> FloatArray:
        """Logits ``X @ w`` (monotone in the click probability)."""
        return as_matrix(X, self.n_features) @ self._w()

    def predict_proba_many(self, X: npt.ArrayLike) -> FloatArray:
        """Click (engagement) probabilities ``σ(X @ w)``."""
        z = self.score_many(X)
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def restart_schedule(self) -> None:
        """Restart the learning-rate schedule at step 0 (``lr`` again), keeping the weights.

        The drift response of :mod:`bandit.drift`: after a change in tastes the
        decayed rate ``lr / (t + 1)^lr_power`` would take long to move the weights.
        """
        self._model.optimizer.n_iterations = 0

    # -- training
    def _learn_row(
        self, x: FloatArray, reward: float, examination: float, weight: float, propensity: float
    ) -> None:
        label = (1.0 if reward > 0 else 0.0) / examination
        self._step(dict(zip(self.feature_names, x.tolist(), strict=True)), label, weight)

    def _learn_rows(self, batch: Batch, examination: FloatArray, weight: FloatArray) -> None:
        # The loop of _learn_row with the numpy → Python conversions done once per batch.
        names = self.feature_names
        clicked = (batch.rewards > 0).tolist()
        for row, click, exam, w in zip(
            batch.X.tolist(), clicked, examination.tolist(), weight.tolist(), strict=True
        ):
            self._step(dict(zip(names, row, strict=True)), (1.0 if click else 0.0) / exam, w)

    def _step(self, x: dict[str, float], label: float, weight: float) -> None:
        """One River SGD step, then the projection onto the weight bounds."""
        self._model.learn_one(x, label, weight)
        wd = self._model._weights
        bound = self.weight_bound
        if wd.max() > bound or wd.min() < -bound:
            for name in self.feature_names:
                wd[name] = min(max(wd[name], -bound), bound)
        self._w_cache = None

    # -- bytes
    def _params(self) -> dict[str, Any]:
        return {
            **super()._params(),
            "lr": self.lr,
            "lr_power": self.lr_power,
            "l2": self.l2,
            "weight_bound": self.weight_bound,
            "clip_gradient": self.clip_gradient,
            "prior": self.prior,
            "prior_scale": self.prior_scale,
            "prior_intercept": self.prior_intercept,
        }

    def _state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        return {"sgd_steps": self.steps}, {"weights": self._w().copy()}

    def _load(self, unpacked: Unpacked) -> None:
        steps = unpacked.state.get("sgd_steps")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ModelFormatError("data", f"bad sgd_steps {steps!r}")
        w = require(unpacked, "weights", (self.n_features,))
        self._model = self._new_model(w, steps)
        self._w_cache = None
