"""One learner protocol for every policy (River's, adapted to numpy and slates).

A learner scores the rows of φ for serving and learns from one shown trip at a
time. Every learner in :mod:`bandit` follows the same contract, checked for
all of them by ``tests/bandit/test_conformance.py``:

- keyword-only construction; each argument is stored under its own name;
  learned state lives in ``_underscore`` attributes; :meth:`~Learner.clone`
  returns an untrained copy with the same arguments;
- ``seed`` is the only source of randomness;
- serving: ``score_many(X) -> (n,)`` (higher is better) and
  ``rank(X, k)`` = :func:`scoring.topk.top_k` of the scores (ties: lower row first);
- training: ``learn_one(x, reward, *, position, propensity, randomized)`` and
  ``learn_many(X, rewards, *, positions, propensities, randomized)``, where
  ``learn_many`` equals a loop of ``learn_one`` (exactly, or to 1e-9 where a
  learner documents a vectorized update);
- ``to_bytes()`` / ``from_bytes()`` in the safe, versioned format of
  :mod:`bandit._format` (JSON header + ``.npy`` arrays, never pickle); a
  restored learner scores identically and *continues learning identically*;
- learning is a deterministic function of the example sequence.

Inputs of one example: ``x`` the φ row, ``reward`` (≥ 0 in our data; any finite
value accepted), ``position`` the raw 0-based displayed position, ``propensity``
the logging probability in (0, 1], ``randomized`` whether the slate's order was
drawn uniformly at random (exploration; feeds the examination estimator of
:mod:`bandit.position_bias`). A reward > 0 counts as a click.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, Self, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from bandit._format import Unpacked, pack, require, unpack
from bandit._validation import Batch, as_batch, as_example, as_matrix, prior_vector
from bandit.errors import LearnerConfigError, ModelFormatError
from bandit.position_bias import PositionBias, PositionCorrection
from features.phi import PHI_NAMES
from scoring.topk import top_k

__all__ = [
    "DEFAULT_FEATURES",
    "BaseLearner",
    "Batch",
    "Learner",
    "as_batch",
    "as_example",
    "as_matrix",
    "learner_from_bytes",
    "prior_vector",
    "register",
]

FloatArray = npt.NDArray[np.float64]
#: Bounds that keep a hostile model header from allocating huge arrays.
MAX_FEATURES = 1024


@runtime_checkable
class Learner(Protocol):
    """What the scoring worker and the learner agent rely on."""

    kind: ClassVar[str]
    seed: int

    @property
    def n_features(self) -> int: ...

    @property
    def n_examples(self) -> int: ...

    def learn_one(
        self,
        x: npt.ArrayLike,
        reward: float,
        *,
        position: int = 0,
        propensity: float = 1.0,
        randomized: bool = False,
    ) -> None: ...

    def learn_many(
        self,
        X: npt.ArrayLike,
        rewards: npt.ArrayLike,
        *,
        positions: npt.ArrayLike | None = None,
        propensities: npt.ArrayLike | None = None,
        randomized: npt.ArrayLike | None = None,
    ) -> None: ...

    def score_many(self, X: npt.ArrayLike) -> FloatArray: ...

    def rank(self, X: npt.ArrayLike, k: int) -> npt.NDArray[np.intp]: ...

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Self: ...

    def clone(self) -> Self: ...


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[Learner]] = {}
L = TypeVar("L", bound=type[Learner])


def register(kind: str) -> Callable[[L], L]:
    """Class decorator: make ``kind`` loadable by :func:`learner_from_bytes`."""

    def deco(cls: L) -> L:
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return deco


def learner_from_bytes(data: bytes) -> Learner:
    """Load any registered learner from its bytes (dispatch on the header's ``kind``)."""
    import bandit.lin_ucb
    import bandit.logistic
    import bandit.segments
    import bandit.vw_policy  # noqa: F401  (fill the registry)

    kind = unpack(data, None, range(1 << 16)).kind
    cls = _REGISTRY.get(kind)
    if cls is None:
        raise ModelFormatError("data", f"unknown learner kind {kind!r}; known: {sorted(_REGISTRY)}")
    return cls.from_bytes(data)


# --------------------------------------------------------------------------- base class


class BaseLearner(abc.ABC):
    """Shared plumbing: validation, position correction, bytes, clone, rank.

    Subclasses implement :meth:`_learn_row` (and may override
    :meth:`_learn_rows` with an equivalent vectorized update),
    :meth:`score_many`, and the state hooks :meth:`_params`,
    :meth:`_state` and :meth:`_load`.
    """

    kind: ClassVar[str] = "base"
    schemas: ClassVar[tuple[int, ...]] = (1,)

    def __init__(
        self,
        *,
        feature_names: Sequence[str],
        seed: int,
        position_bias: PositionBias,
        examination_floor: float,
        examination_strength: float,
        max_position: int,
    ) -> None:
        names = tuple(feature_names)
        if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise LearnerConfigError("feature_names", "must be distinct non-empty strings")
        if len(names) > MAX_FEATURES:
            raise LearnerConfigError("feature_names", f"at most {MAX_FEATURES} features, got {len(names)}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise LearnerConfigError("seed", f"must be an integer, got {seed!r}")
        self.feature_names = names
        self.seed = seed
        self._position = PositionCorrection(
            position_bias, max_position=max_position, strength=examination_strength, floor=examination_floor
        )
        self.position_bias: PositionBias = position_bias
        self.examination_floor = examination_floor
        self.examination_strength = examination_strength
        self.max_position = max_position
        self._n = 0

    # -- serving
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_examples(self) -> int:
        """Examples learned so far."""
        return self._n

    @property
    def examination_curve(self) -> FloatArray:
        """The current examination estimate per position (see :mod:`bandit.position_bias`)."""
        return self._position.estimator.curve()

    @abc.abstractmethod
    def score_many(self, X: npt.ArrayLike) -> FloatArray:
        """Serving scores of the rows of ``X`` (n, d); higher is better."""

    def rank(self, X: npt.ArrayLike, k: int) -> npt.NDArray[np.intp]:
        """Rows of ``X`` in ranked order, the best ``k`` (ties: lower row first)."""
        return top_k(self.score_many(X), k)

    # -- training
    def learn_one(
        self,
        x: npt.ArrayLike,
        reward: float,
        *,
        position: int = 0,
        propensity: float = 1.0,
        randomized: bool = False,
    ) -> None:
        """Learn from one shown trip (validated first; a bad example changes nothing)."""
        self._learn(as_example(x, reward, position, propensity, randomized, self.n_features))

    def learn_many(
        self,
        X: npt.ArrayLike,
        rewards: npt.ArrayLike,
        *,
        positions: npt.ArrayLike | None = None,
        propensities: npt.ArrayLike | None = None,
        randomized: npt.ArrayLike | None = None,
    ) -> None:
        """Learn from a micro-batch in order, equal to a loop of :meth:`learn_one`.

        The whole batch is validated before anything is learned.
        """
        self._learn(as_batch(X, rewards, positions, propensities, randomized, self.n_features))

    def _learn(self, batch: Batch) -> None:
        if len(batch) == 0:
            return
        exam, weight = self._position.step_many(batch.positions, batch.rewards > 0, batch.randomized)
        self._learn_rows(batch, exam, weight)
        self._n += len(batch)

    def _learn_rows(self, batch: Batch, examination: FloatArray, weight: FloatArray) -> None:
        for i in range(len(batch)):
            self._learn_row(
                batch.X[i],
                float(batch.rewards[i]),
                float(examination[i]),
                float(weight[i]),
                float(batch.propensities[i]),
            )

    @abc.abstractmethod
    def _learn_row(
        self, x: FloatArray, reward: float, examination: float, weight: float, propensity: float
    ) -> None:
        """One update: target ``reward / examination``, example weight ``weight``."""

    # -- parameters, state, bytes
    def _params(self) -> dict[str, Any]:
        """Constructor arguments as JSON values; subclasses extend."""
        return {
            "feature_names": list(self.feature_names),
            "seed": self.seed,
            "position_bias": self._position.json_mode(),
            "examination_floor": self.examination_floor,
            "examination_strength": self.examination_strength,
            "max_position": self.max_position,
        }

    @abc.abstractmethod
    def _state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """Learned state: (JSON scalars, arrays)."""

    @abc.abstractmethod
    def _load(self, unpacked: Unpacked) -> None:
        """Restore the state written by :meth:`_state` (raise ModelFormatError if bad)."""

    def clone(self) -> Self:
        """An untrained learner with the same arguments."""
        return type(self)(**self._params())

    def to_bytes(self) -> bytes:
        """All learned state in the safe, versioned format of :mod:`bandit._format`."""
        state, arrays = self._state()
        arrays = {**self._position.state_arrays(), **arrays}
        return pack(self.kind, self.schemas[-1], self._params(), {"n_examples": self._n, **state}, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a learner from :meth:`to_bytes`; it continues learning identically."""
        unpacked = unpack(data, cls.kind, cls.schemas)
        try:
            obj = cls(**unpacked.params)
        except (TypeError, ValueError) as exc:  # LearnerConfigError is a ValueError
            raise ModelFormatError("data", f"bad {cls.kind} parameters ({exc})") from None
        n = unpacked.state.get("n_examples")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ModelFormatError("data", f"bad n_examples {n!r}")
        m = obj.max_position
        obj._position.load_arrays(
            require(unpacked, "exam_clicks", (m,)), require(unpacked, "exam_views", (m,))
        )
        obj._n = n
        obj._load(unpacked)
        return obj

    def __repr__(self) -> str:
        shown = {k: v for k, v in self._params().items() if k != "feature_names"}
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({args})"


DEFAULT_FEATURES: tuple[str, ...] = PHI_NAMES
"""φ's column names, the default ``feature_names`` of every learner."""
