"""A Vowpal Wabbit contextual-bandit policy (``cb_explore_adf``) via ``vowpal-wabbit-next``.

Setup. Each request is one multi-line VW example: an optional *shared* line
with user-context features (namespace ``u``; the ``context`` argument) and one
*action* line per candidate trip carrying its φ row (namespace ``a``, one
feature per φ column, zero values omitted exactly as VW's text parser does).
With a context, ``-q ua`` adds the user × trip interactions. The cost model is
``--cb_type mtr`` (importance-weighted regression of the chosen action's
cost, Dudík et al. 2011 / Bietti et al. 2021), the exploration is

- ``"squarecb"`` (default; Foster & Rakhlin 2020, "Beyond UCB"): the pmf
  ``p_a = 1 / (K + γ (ŷ_a − ŷ_best))`` for non-greedy actions is strictly
  decreasing in the predicted cost, so ranking by the pmf is ranking by the
  predicted reward; ``γ = gamma_scale · t^gamma_exponent`` grows with data;
- ``"epsilon"``: ε-greedy; the pmf singles out the greedy action only, so
  the rest of a ranking falls back to row order (use it for single picks).

:meth:`VWPolicy.score_many` returns that pmf in row order (VW returns
``(action, prob)`` pairs greedy-first; we scatter them back).

Learning. One :class:`~stream.events.Example` record is one shown trip, so
each update is a multi-line example with that single action labelled
``cost = −reward / ê(position)`` and the weight from :mod:`bandit.position_bias`.
The label's probability is 1 unless ``importance_weights=True`` passes the
logged propensity: in a ranking, an explored placement has propensity
``ε / |candidates|`` (~1e-4), and ``mtr`` would weigh its cost by the inverse,
swamping the model with a few random trips; the cost of a shown trip is
observed whatever the chance it was shown, so plain regression over shown
trips is what ranking needs (the closed-loop simulation, :mod:`sim.closed_loop`,
measured 38 % of the oracle CTR with the weights and 82 % without).
``learn_many`` is the loop.

Speed. No VW text is built: each φ column's hashed index is computed once by
parsing a probe line, then rows are pushed as numpy (index, value) arrays
into VW examples (``push_many_features``): measured ~7.5 µs per candidate
including VW's prediction (~7.5 ms for 1,000 candidates, steady state;
building and parsing a text line instead costs ~20-25 µs per candidate).
φ rows depend on the user, so there is no per-trip line to cache; the probe
indices are the cache.

Determinism (measured with vowpal-wabbit-next 0.7 / VW 9.9, see
``tests/bandit/test_vw_policy.py``): the same arguments and example sequence
give bit-identical models (bytes and weights), in one process or across
processes; ``--random_seed`` plays no role in the pmf (VW does not sample in
``predict``). Predictions interleaved with learning, and a save/load in the
middle of a run, leave the weights and their online state (adaptive,
normalized) bit-identical, so every later score is identical; the serialised
bytes then differ only in VW's progress counters (examples seen, loss sums).
VW keeps some options in its model bytes (``--learning_rate``, ``--power_t``)
but not all (``--l2``), so loading passes the full argument list again.
Serialisation stores VW's own model bytes as a ``uint8`` array inside our
format (:mod:`bandit._format`). :meth:`VWPolicy.from_bytes` opens one
workspace, the restored one (a workspace costs ~2.5 ms of CPU whatever it
holds; the scoring worker and the learner load published models all the time).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Literal, Self, cast

import numpy as np
import numpy.typing as npt
import vowpal_wabbit_next as vw

from bandit._format import Unpacked
from bandit.errors import LearnerConfigError, LearnerInputError, ModelFormatError
from bandit.position_bias import PositionBias
from bandit.protocol import DEFAULT_FEATURES, BaseLearner, Batch, as_batch, as_example, as_matrix, register

__all__ = ["Context", "VWPolicy"]

FloatArray = npt.NDArray[np.float64]
Context = Mapping[str, float]
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_NO_LABEL = vw.CBLabel()
_SHARED_LABEL = vw.CBLabel(shared=True)
#: True while :meth:`VWPolicy.from_bytes` builds a policy: the constructor then opens no
#: workspace, since ``_load`` opens the restored one (per thread and per task, as contextvars are).
_RESTORING: ContextVar[bool] = ContextVar("vw_policy_restoring", default=False)


def _check_number(value: object, name: str, low: float, high: float = math.inf) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:  # type: ignore[operator]
        raise LearnerConfigError(name, f"must be a finite number in [{low}, {high}], got {value!r}")
    return float(value)  # type: ignore[arg-type]


@register("vw_cb")
class VWPolicy(BaseLearner):
    """Contextual-bandit policy on VW ``cb_explore_adf`` over φ rows as actions.

    Parameters
    ----------
    exploration
        ``"squarecb"`` or ``"epsilon"``.
    epsilon
        ε of ε-greedy (``exploration="epsilon"``).
    gamma_scale, gamma_exponent
        SquareCB's ``γ = gamma_scale · t^gamma_exponent``.
    learning_rate, power_t, l2
        VW's ``--learning_rate``, ``--power_t``, ``--l2``.
    bits
        Hash bits ``-b`` (weight table of ``2^bits`` entries).
    feature_names, seed, position_bias, examination_floor, examination_strength, max_position
        See :class:`bandit.protocol.BaseLearner`; ``seed`` is VW's ``--random_seed``.
    importance_weights
        Pass the logged propensity to VW as the label's probability (see the
        module docstring for why the default is not to).
    """

    def __init__(
        self,
        *,
        exploration: Literal["squarecb", "epsilon"] = "squarecb",
        epsilon: float = 0.05,
        gamma_scale: float = 10.0,
        gamma_exponent: float = 0.5,
        learning_rate: float = 0.5,
        power_t: float = 0.5,
        l2: float = 0.0,
        bits: int = 18,
        feature_names: Sequence[str] = DEFAULT_FEATURES,
        seed: int = 0,
        position_bias: PositionBias = "estimated",
        examination_floor: float = 0.05,
        examination_strength: float = 10.0,
        max_position: int = 20,
        importance_weights: bool = False,
    ) -> None:
        super().__init__(
            feature_names=feature_names,
            seed=seed,
            position_bias=position_bias,
            examination_floor=examination_floor,
            examination_strength=examination_strength,
            max_position=max_position,
        )
        if exploration not in ("squarecb", "epsilon"):
            raise LearnerConfigError("exploration", f"must be 'squarecb' or 'epsilon', got {exploration!r}")
        for name in self.feature_names:
            if not _SAFE_NAME.match(name):
                raise LearnerConfigError("feature_names", f"{name!r} is not a VW-safe name ([A-Za-z0-9_.-]+)")
        if isinstance(bits, bool) or not isinstance(bits, int) or not 8 <= bits <= 28:
            raise LearnerConfigError("bits", f"must be an integer in [8, 28], got {bits!r}")
        self.exploration = exploration
        self.epsilon = _check_number(epsilon, "epsilon", 0.0, 1.0)
        self.gamma_scale = _check_number(gamma_scale, "gamma_scale", 0.0)
        self.gamma_exponent = _check_number(gamma_exponent, "gamma_exponent", 0.0)
        self.learning_rate = _check_number(learning_rate, "learning_rate", 0.0)
        self.power_t = _check_number(power_t, "power_t", 0.0)
        self.l2 = _check_number(l2, "l2", 0.0)
        self.bits = bits
        if not isinstance(importance_weights, bool):
            raise LearnerConfigError("importance_weights", f"must be a bool, got {importance_weights!r}")
        self.importance_weights = importance_weights
        if not _RESTORING.get():  # from_bytes opens the restored workspace instead (one, not two)
            self._open(None)
        self._pending_shared: list[list[vw.Example]] | None = None

    def _args(self) -> list[str]:
        args = ["--cb_explore_adf", "--cb_type", "mtr", "--quiet", "-q", "ua"]
        args += ["--random_seed", str(self.seed), "-b", str(self.bits)]
        args += ["--learning_rate", repr(self.learning_rate), "--power_t", repr(self.power_t)]
        args += ["--l2", repr(self.l2)]
        if self.exploration == "squarecb":
            args += ["--squarecb", "--gamma_scale", repr(self.gamma_scale)]
            args += ["--gamma_exponent", repr(self.gamma_exponent)]
        else:
            args += ["--epsilon", repr(self.epsilon)]
        return args

    def _open(self, model_data: bytes | None) -> None:
        self._ws = vw.Workspace(self._args(), model_data=model_data)
        self._parser = vw.TextFormatParser(self._ws)
        probe = self._parser.parse_line("|a " + " ".join(f"{n}:1" for n in self.feature_names))
        idx = np.array(probe["a"].indices, dtype=np.uint64)
        if len(idx) != self.n_features or len(set(idx.tolist())) != self.n_features:
            raise LearnerConfigError("bits", f"feature hashes collide at {self.bits} bits; use more bits")
        self._index = idx

    # -- examples
    def _shared(self, context: Context | None, name: str) -> list[vw.Example]:
        if not context:
            return []
        parts = []
        for key, value in context.items():
            if not isinstance(key, str) or not _SAFE_NAME.match(key):
                raise LearnerInputError(name, f"feature name {key!r} is not VW-safe ([A-Za-z0-9_.-]+)")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise LearnerInputError(name, f"{key}: must be a finite number, got {value!r}")
            parts.append(f"{key}:{float(value)!r}")
        ex = self._parser.parse_line("shared |u " + " ".join(parts))
        ex.set_label(_SHARED_LABEL)
        return [ex]

    def _actions(self, X: FloatArray, labels: Sequence[vw.CBLabel] | None = None) -> list[vw.Example]:
        X32 = X.astype(np.float32)
        nonzero = X32 != 0
        out = []
        for i in range(len(X32)):
            mask = nonzero[i]
            ex = vw.Example()
            ex["a"].push_many_features(self._index[mask], X32[i][mask])
            ex.set_label(labels[i] if labels is not None else _NO_LABEL)
            out.append(ex)
        return out

    # -- serving
    def score_many(self, X: npt.ArrayLike, *, context: Context | None = None) -> FloatArray:
        """The policy's pmf over the rows of ``X`` (row order; sums to 1)."""
        Xm = as_matrix(X, self.n_features)
        out = np.zeros(len(Xm))
        if len(Xm) == 0:
            return out
        pred = self._ws.predict_one(self._shared(context, "context") + self._actions(Xm))
        pmf = cast(list[tuple[int, float]], pred)  # ActionProbs: greedy first, not row order
        for action, prob in pmf:
            out[action] = prob
        return out

    def weights_array(self) -> npt.NDArray[np.float32]:
        """A copy of VW's dense weight table with its online state (for checks)."""
        return np.array(self._ws.weights(), copy=True)

    def model_weights(self) -> npt.NDArray[np.float32]:
        """The weights alone, one per hashed slot: VW keeps its optimiser's
        per-weight state (adaptive and normalisation sums) beside each weight,
        and those grow without bound by design, so guardrails check only these."""
        table = np.asarray(self._ws.weights())
        return np.array(table.reshape(table.shape[0], -1)[:, 0], copy=True)

    # -- training
    def learn_one(
        self,
        x: npt.ArrayLike,
        reward: float,
        *,
        position: int = 0,
        propensity: float = 1.0,
        randomized: bool = False,
        context: Context | None = None,
    ) -> None:
        """:meth:`BaseLearner.learn_one` with an optional shared ``context``."""
        batch = as_example(x, reward, position, propensity, randomized, self.n_features)
        self._learn_with_shared(batch, [self._shared(context, "context")])

    def learn_many(
        self,
        X: npt.ArrayLike,
        rewards: npt.ArrayLike,
        *,
        positions: npt.ArrayLike | None = None,
        propensities: npt.ArrayLike | None = None,
        randomized: npt.ArrayLike | None = None,
        contexts: Sequence[Context | None] | None = None,
    ) -> None:
        """:meth:`BaseLearner.learn_many` with optional per-row shared ``contexts``."""
        batch = as_batch(X, rewards, positions, propensities, randomized, self.n_features)
        if contexts is not None and len(contexts) != len(batch):
            raise LearnerInputError("contexts", f"expected {len(batch)} entries, got {len(contexts)}")
        shared = [
            self._shared(contexts[i] if contexts else None, f"contexts[{i}]") for i in range(len(batch))
        ]
        self._learn_with_shared(batch, shared)

    def _learn_with_shared(self, batch: Batch, shared: list[list[vw.Example]]) -> None:
        # contexts are parsed (and validated) before anything is learned: a bad one changes nothing
        self._pending_shared = shared
        try:
            self._learn(batch)
        finally:
            self._pending_shared = None

    def _learn_rows(self, batch: Batch, examination: FloatArray, weight: FloatArray) -> None:
        shared = self._pending_shared or [[] for _ in range(len(batch))]
        # Per-batch numpy work once; per row only the VW objects (same features, labels, order).
        X32 = batch.X.astype(np.float32)
        nonzero = X32 != 0
        costs = (-batch.rewards / examination).tolist()
        probs = batch.propensities.tolist() if self.importance_weights else [1.0] * len(batch)
        weights = weight.tolist()
        index = self._index
        for i in range(len(batch)):
            mask = nonzero[i]
            ex = vw.Example()
            ex["a"].push_many_features(index[mask], X32[i][mask])
            ex.set_label(vw.CBLabel(label=(0, costs[i], probs[i]), weight=weights[i]))
            self._ws.learn_one([*shared[i], ex])

    def _learn_row(
        self, x: FloatArray, reward: float, examination: float, weight: float, propensity: float
    ) -> None:  # pragma: no cover - _learn_rows handles every row
        raise NotImplementedError

    # -- bytes
    def _params(self) -> dict[str, Any]:
        return {
            **super()._params(),
            "exploration": self.exploration,
            "epsilon": self.epsilon,
            "gamma_scale": self.gamma_scale,
            "gamma_exponent": self.gamma_exponent,
            "learning_rate": self.learning_rate,
            "power_t": self.power_t,
            "l2": self.l2,
            "bits": self.bits,
            "importance_weights": self.importance_weights,
        }

    def _state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        return {}, {"vw_model": np.frombuffer(self._ws.serialize(), dtype=np.uint8)}

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """:meth:`BaseLearner.from_bytes`, opening one VW workspace: the restored one.

        A workspace costs ~2.5 ms of CPU whatever it holds (VW's option parsing
        and setup); the constructor's empty one would be thrown away at once.
        The parameters are validated by the constructor as usual, and the
        restored workspace is checked as the constructor checks its own.
        """
        token = _RESTORING.set(True)
        try:
            return super().from_bytes(data)
        finally:
            _RESTORING.reset(token)

    def _load(self, unpacked: Unpacked) -> None:
        blob = unpacked.arrays.get("vw_model")
        if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
            raise ModelFormatError("data", "array 'vw_model' is missing or not uint8 bytes")
        try:
            self._open(blob.tobytes())
        except LearnerConfigError as exc:  # the constructor's check, run on the restored workspace
            raise ModelFormatError("data", f"bad {self.kind} parameters ({exc})") from None
        except (RuntimeError, ValueError) as exc:
            raise ModelFormatError("data", f"VW rejected the model bytes ({exc})") from None
