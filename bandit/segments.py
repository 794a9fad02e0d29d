"""Per-segment learners with a global model to fall back to and shrink towards.

Each user segment (:data:`features.context.SEGMENTS`) gets its own learner,
cloned from a template, and one *global* learner sees every example. Every
example updates the global model and the model of its segment (created on
first use), so a new or quiet segment always has a well-trained neighbour.

Serving rule for a request of segment ``s`` whose model has learned ``n_s``
examples:

- ``n_s < min_examples`` (or no segment given): serve the global model;
- otherwise blend the scores with the segment's weight ``w = n_s / (n_s + n₀)``
  (``n₀ = shrinkage``)::

      score(x) = w · score_s(x) + (1 − w) · score_global(x)

For the linear models (logistic logits, LinUCB means) blending scores is
blending parameters, ``θ = w θ_s + (1 − w) θ_global``: the segment model
shrunk towards the global one with the credibility weight of Bühlmann
(1967), which tends to 1 as the segment's own evidence grows; ``n₀`` is the
number of examples at which both count equally. For LinUCB the UCB scores
blend the same way (the width term too); for the VW policy the pmfs blend,
which keeps the squarecb ordering of each.

>>> import numpy as np
>>> from bandit.lin_ucb import LinUCB
>>> seg = SegmentedLearner(base=LinUCB(feature_names=("a", "b")), min_examples=2, shrinkage=2.0)
>>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
>>> seg.learn_many(X, [1.0, 0.0], segments=["luxury", "budget"])
>>> seg.segment_weight("luxury"), seg.segment_weight("budget")
(0.0, 0.0)
>>> seg.learn_one(X[0], 1.0, segment="luxury")
>>> seg.segment_weight("luxury")
0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt

from bandit._format import pack, unpack
from bandit.errors import LearnerConfigError, LearnerInputError, ModelFormatError
from bandit.protocol import Batch, Learner, as_batch, as_example, learner_from_bytes, register
from scoring.topk import top_k

__all__ = ["GLOBAL_SEGMENT", "SegmentedLearner", "shrinkage_weight"]

#: The segment name under which the streaming learner stores the global model of a policy.
GLOBAL_SEGMENT = "_all"


def shrinkage_weight(n_segment: int, *, min_examples: int, shrinkage: float) -> float:
    """The segment model's share ``w`` of the blended score (the serving rule above).

    >>> shrinkage_weight(100, min_examples=200, shrinkage=1000.0)
    0.0
    >>> shrinkage_weight(1000, min_examples=200, shrinkage=1000.0)
    0.5
    """
    if n_segment < min_examples:
        return 0.0
    return n_segment / (n_segment + shrinkage) if shrinkage > 0 else 1.0


FloatArray = npt.NDArray[np.float64]
_MAX_SEGMENT = 128


def _check_segment(segment: object, name: str) -> str:
    if not isinstance(segment, str) or not 0 < len(segment) <= _MAX_SEGMENT:
        raise LearnerInputError(name, f"must be a non-empty string of at most {_MAX_SEGMENT} characters")
    return segment


def _blob(learner: Learner) -> npt.NDArray[np.uint8]:
    return np.frombuffer(learner.to_bytes(), dtype=np.uint8)


@register("segmented")
class SegmentedLearner:
    """A learner per segment plus a global learner, with fallback and shrinkage.

    Parameters
    ----------
    base
        Template learner; each segment and the global model start as ``base.clone()``.
    min_examples
        A segment model serves only once it has learned this many examples.
    shrinkage
        ``n₀`` of the credibility weight ``n_s / (n_s + n₀)`` (0 = no shrinkage).
    """

    kind: ClassVar[str] = "segmented"
    schemas: ClassVar[tuple[int, ...]] = (1,)

    def __init__(self, *, base: Learner, min_examples: int = 200, shrinkage: float = 1000.0) -> None:
        if not isinstance(base, Learner) or isinstance(base, SegmentedLearner):
            raise LearnerConfigError("base", f"must be a (non-segmented) learner, got {type(base).__name__}")
        if isinstance(min_examples, bool) or not isinstance(min_examples, int) or min_examples < 0:
            raise LearnerConfigError("min_examples", f"must be an integer >= 0, got {min_examples!r}")
        ok = (
            isinstance(shrinkage, int | float)
            and not isinstance(shrinkage, bool)
            and math.isfinite(shrinkage)
        )
        if not ok or shrinkage < 0:
            raise LearnerConfigError("shrinkage", f"must be a finite number >= 0, got {shrinkage!r}")
        self.base = base.clone()
        self.min_examples = min_examples
        self.shrinkage = float(shrinkage)
        self.seed = base.seed
        self._global: Learner = base.clone()
        self._segments: dict[str, Learner] = {}

    # -- introspection
    @property
    def n_features(self) -> int:
        return self._global.n_features

    @property
    def n_examples(self) -> int:
        """Examples learned (each counted once; it also reached its segment)."""
        return self._global.n_examples

    @property
    def global_model(self) -> Learner:
        return self._global

    @property
    def segments(self) -> tuple[str, ...]:
        """Segments seen so far, in order of first appearance."""
        return tuple(self._segments)

    def model(self, segment: str) -> Learner | None:
        """The segment's own learner, or None if it has seen no example."""
        return self._segments.get(segment)

    def segment_weight(self, segment: str | None) -> float:
        """Weight of the segment model in the served score (0 = global only)."""
        model = self._segments.get(segment) if segment is not None else None
        if model is None or model.n_examples < self.min_examples:
            return 0.0
        n = model.n_examples
        return n / (n + self.shrinkage) if n + self.shrinkage > 0 else 1.0

    # -- serving
    def score_many(self, X: npt.ArrayLike, *, segment: str | None = None) -> FloatArray:
        """Scores of the segment's served model (see the module's rule)."""
        w = self.segment_weight(segment)
        glob = self._global.score_many(X)
        if w == 0.0 or segment is None:
            return glob
        return w * self._segments[segment].score_many(X) + (1.0 - w) * glob

    def rank(self, X: npt.ArrayLike, k: int, *, segment: str | None = None) -> npt.NDArray[np.intp]:
        return top_k(self.score_many(X, segment=segment), k)

    # -- training
    def _model_for(self, segment: str) -> Learner:
        model = self._segments.get(segment)
        if model is None:
            model = self._segments[segment] = self.base.clone()
        return model

    def learn_one(
        self,
        x: npt.ArrayLike,
        reward: float,
        *,
        segment: str | None = None,
        position: int = 0,
        propensity: float = 1.0,
        randomized: bool = False,
    ) -> None:
        """Learn into the global model and the segment's model (``None`` = global only)."""
        if segment is not None:
            _check_segment(segment, "segment")
        self._learn(as_example(x, reward, position, propensity, randomized, self.n_features), [segment])

    def learn_many(
        self,
        X: npt.ArrayLike,
        rewards: npt.ArrayLike,
        *,
        segments: Sequence[str | None] | None = None,
        positions: npt.ArrayLike | None = None,
        propensities: npt.ArrayLike | None = None,
        randomized: npt.ArrayLike | None = None,
    ) -> None:
        """Equal to a loop of :meth:`learn_one` (each model sees its rows in order)."""
        batch = as_batch(X, rewards, positions, propensities, randomized, self.n_features)
        segs: list[str | None] = [None] * len(batch) if segments is None else list(segments)
        if len(segs) != len(batch):
            raise LearnerInputError("segments", f"expected {len(batch)} entries, got {len(segs)}")
        for i, s in enumerate(segs):
            if s is not None:
                _check_segment(s, f"segments[{i}]")
        self._learn(batch, segs)

    def _learn(self, batch: Batch, segments: Sequence[str | None]) -> None:
        if len(batch) == 0:
            return
        self._global.learn_many(
            batch.X,
            batch.rewards,
            positions=batch.positions,
            propensities=batch.propensities,
            randomized=batch.randomized,
        )
        rows: dict[str, list[int]] = {}
        for i, s in enumerate(segments):
            if s is not None:
                rows.setdefault(s, []).append(i)
        for s, idx in rows.items():
            take = np.asarray(idx)
            self._model_for(s).learn_many(
                batch.X[take],
                batch.rewards[take],
                positions=batch.positions[take],
                propensities=batch.propensities[take],
                randomized=batch.randomized[take],
            )

    # -- protocol
    def clone(self) -> Self:
        return type(self)(base=self.base, min_examples=self.min_examples, shrinkage=self.shrinkage)

    def to_bytes(self) -> bytes:
        arrays = {"base": _blob(self.base), "global": _blob(self._global)}
        for i, model in enumerate(self._segments.values()):
            arrays[f"segment_{i}"] = _blob(model)
        params = {"min_examples": self.min_examples, "shrinkage": self.shrinkage}
        return pack(self.kind, self.schemas[-1], params, {"segments": list(self._segments)}, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        unpacked = unpack(data, cls.kind, cls.schemas)

        def load(name: str) -> Learner:
            blob = unpacked.arrays.get(name)
            if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
                raise ModelFormatError("data", f"array {name!r} is missing or not uint8 bytes")
            return learner_from_bytes(blob.tobytes())

        base = load("base")
        try:
            obj = cls(base=base, **unpacked.params)
        except (TypeError, ValueError) as exc:  # LearnerConfigError is a ValueError
            raise ModelFormatError("data", f"bad segmented parameters ({exc})") from None
        names = unpacked.state.get("segments")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelFormatError("data", "state 'segments' must be a list of names")
        obj._global = load("global")
        for i, name in enumerate(names):
            obj._segments[name] = load(f"segment_{i}")
        for model in (obj._global, *obj._segments.values()):
            if model.kind != base.kind:
                raise ModelFormatError("data", f"holds a {model.kind!r} model, expected {base.kind!r}")
        return obj

    def __repr__(self) -> str:
        return f"SegmentedLearner(base={self.base!r}, min_examples={self.min_examples}, shrinkage={self.shrinkage})"
