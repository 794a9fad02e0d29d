r"""Off-policy estimators, per position: IPS, SNIPS, DM, DR and SNDR, with clipping.

Each logged round ``i`` is one shown item: the context, the logged action
``a_i`` at display position ``k_i``, its reward ``r_i`` and the logging
policy's propensity ``π_b(a_i | x_i, k_i)``. For an evaluation policy ``π_e``
the importance weight is ``w_i = π_e(a_i | x_i, k_i) / π_b(a_i | x_i, k_i)``,
optionally clipped to ``min(w_i, λ)``. With a reward model ``q̂`` and
``q̂_π(x_i, k_i) = Σ_a π_e(a | x_i, k_i) q̂(x_i, a, k_i)``:

.. math::

   \hat V_{IPS} = \tfrac1n Σ w_i r_i, \qquad
   \hat V_{SNIPS} = \frac{Σ w_i r_i}{Σ w_i}, \qquad
   \hat V_{DM} = \tfrac1n Σ q̂_π(x_i, k_i),

   \hat V_{DR} = \tfrac1n Σ \big[q̂_π(x_i, k_i) + w_i (r_i − q̂(x_i, a_i, k_i))\big], \qquad
   \hat V_{SNDR} = \hat V_{DM} + \frac{Σ w_i (r_i − q̂(x_i, a_i, k_i))}{Σ w_i}.

Estimates are the expected reward per shown item (a CTR when the reward is a
click), overall and for each position on its own. References: Horvitz &
Thompson (1952); Swaminathan & Joachims (2015, self-normalisation); Dudík,
Langford & Li (2011, doubly robust); Saito et al. (2021, Open Bandit Pipeline),
whose estimator names (``ipw``, ``snipw``, ``dm``, ``dr``, ``sndr``) we use.

Confidence intervals come from a (cluster) bootstrap: rows — or whole groups,
e.g. the slates of one request — are resampled with replacement and every
estimator is recomputed as a ratio of weighted sums, vectorised over
replicates.

>>> rng = np.random.default_rng(0)
>>> n = 1000
>>> data = OPEData.from_arrays(reward=rng.binomial(1, 0.3, n), position=np.zeros(n, int),
...                            pscore=np.full(n, 0.25), pi_e=np.full(n, 0.25))
>>> estimate(data, "ipw") == estimate(data, "snipw") == float(data.reward.mean())
True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from bandit.ope_validation import (
    OPEInputError,
    as_float_vector,
    as_int_vector,
    check_action_dist,
    check_pscore,
    check_same_length,
)

__all__ = [
    "ESTIMATORS",
    "Diagnostics",
    "Estimate",
    "EstimatorName",
    "OPEData",
    "OPEReport",
    "estimate",
    "evaluate",
]

FloatArray = npt.NDArray[np.float64]
EstimatorName = Literal["ipw", "snipw", "dm", "dr", "sndr"]
ESTIMATORS: Final[tuple[EstimatorName, ...]] = get_args(EstimatorName)
_NEEDS_MODEL: Final = frozenset({"dm", "dr", "sndr"})
_CHUNK = 64  # bootstrap replicates per vectorised chunk
_CHUNK_CELLS = 4_000_000  # at most this many multiplicities (32 MB) per chunk


@dataclass(frozen=True)
class OPEData:
    """Validated logs for OPE: one row per shown item (see the module docstring).

    ``pi_e`` is the evaluation policy's probability of the logged action at its
    logged position; ``q_logged`` is ``q̂(x_i, a_i, k_i)`` and ``q_policy`` is
    ``q̂_π(x_i, k_i)`` (both needed by DM, DR and SNDR); ``group`` (optional)
    clusters rows for the bootstrap.
    """

    reward: FloatArray
    position: npt.NDArray[np.int64]
    pscore: FloatArray
    pi_e: FloatArray
    q_logged: FloatArray | None = None
    q_policy: FloatArray | None = None
    group: npt.NDArray[np.int64] | None = None

    @classmethod
    def from_arrays(
        cls,
        *,
        reward: npt.ArrayLike,
        position: npt.ArrayLike,
        pscore: npt.ArrayLike,
        pi_e: npt.ArrayLike,
        q_logged: npt.ArrayLike | None = None,
        q_policy: npt.ArrayLike | None = None,
        group: npt.ArrayLike | None = None,
    ) -> OPEData:
        """Validate per-row arrays (propensities in (0, 1], π_e in [0, 1], finite, equal lengths)."""
        r = as_float_vector(reward, "reward")
        pos = as_int_vector(position, "position")
        ps = as_float_vector(pscore, "pscore")
        pe = as_float_vector(pi_e, "pi_e")
        ql = None if q_logged is None else as_float_vector(q_logged, "q_logged")
        qp = None if q_policy is None else as_float_vector(q_policy, "q_policy")
        g = None if group is None else as_int_vector(group, "group")
        check_same_length(reward=r, position=pos, pscore=ps, pi_e=pe, q_logged=ql, q_policy=qp, group=g)
        if (ql is None) != (qp is None):
            raise OPEInputError("q_logged", "q_logged and q_policy must be given together")
        check_pscore(ps)
        bad = (pe < 0) | (pe > 1)
        if bad.any():
            i = int(np.argmax(bad))
            raise OPEInputError("pi_e", f"must be in [0, 1], got {float(pe[i])!r} at index {i}")
        return cls(r, pos, ps, pe, ql, qp, g)

    @classmethod
    def from_dense(
        cls,
        *,
        reward: npt.ArrayLike,
        action: npt.ArrayLike,
        position: npt.ArrayLike,
        pscore: npt.ArrayLike,
        action_dist: npt.ArrayLike,
        q_hat: npt.ArrayLike | None = None,
        group: npt.ArrayLike | None = None,
    ) -> OPEData:
        """Logs plus obp-style dense arrays of shape ``(n_rounds, n_actions, len_list)``.

        ``action_dist[i, a, k]`` is ``π_e(a | x_i, k)`` and must sum to 1 over
        ``a``; ``q_hat[i, a, k]`` is the reward model's prediction.
        """
        dist = np.asarray(action_dist, dtype=np.float64)
        check_action_dist(dist)
        a = as_int_vector(action, "action")
        pos = as_int_vector(position, "position")
        check_same_length(action=a, position=pos, action_dist=dist)
        if a.max() >= dist.shape[1]:
            raise OPEInputError("action", f"ids must be < n_actions = {dist.shape[1]}, got {a.max()}")
        if pos.max() >= dist.shape[2]:
            raise OPEInputError("position", f"must be < len_list = {dist.shape[2]}, got {pos.max()}")
        rows = np.arange(len(a))
        ql = qp = None
        if q_hat is not None:
            q = np.asarray(q_hat, dtype=np.float64)
            if q.shape != dist.shape:
                raise OPEInputError(
                    "q_hat", f"must have the shape of action_dist {dist.shape}, got {q.shape}"
                )
            if not np.all(np.isfinite(q)):
                raise OPEInputError("q_hat", "must be finite (no NaN or inf)")
            ql = q[rows, a, pos]
            qp = np.einsum("ia,ia->i", dist[rows, :, pos], q[rows, :, pos])
        return cls.from_arrays(
            reward=reward, position=pos, pscore=pscore, pi_e=dist[rows, a, pos],
            q_logged=ql, q_policy=qp, group=group,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.reward)

    def subset(self, mask: npt.NDArray[np.bool_]) -> OPEData:
        """The rows where ``mask`` holds (e.g. one position)."""

        def take(x: npt.NDArray[np.generic] | None) -> npt.NDArray[np.generic] | None:
            return None if x is None else x[mask]

        return OPEData(
            self.reward[mask], self.position[mask], self.pscore[mask], self.pi_e[mask],
            take(self.q_logged), take(self.q_policy), take(self.group),  # type: ignore[arg-type]
        )  # fmt: skip

    def weights(self, clip: float | None = None) -> FloatArray:
        """Importance weights ``π_e / π_b``, clipped at ``clip`` when given."""
        w = self.pi_e / self.pscore
        return w if clip is None else np.minimum(w, clip)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's value at one position (``None``: all positions) with its bootstrap CI."""

    estimator: str
    position: int | None
    value: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """Importance-weight diagnostics: a small ESS or a huge max weight means a high-variance estimate."""

    position: int | None
    n: int
    mean_weight: float
    max_weight: float
    ess: float
    clipped_fraction: float


@dataclass(frozen=True, slots=True)
class OPEReport:
    estimates: tuple[Estimate, ...]
    diagnostics: tuple[Diagnostics, ...]
    clip: float | None
    alpha: float
    n_bootstrap: int

    def to_dict(self) -> dict[str, object]:
        return {
            "clip": self.clip,
            "alpha": self.alpha,
            "n_bootstrap": self.n_bootstrap,
            "estimates": [
                {"estimator": e.estimator, "position": e.position, "value": e.value,
                 "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n}
                for e in self.estimates
            ],
            "diagnostics": [
                {"position": d.position, "n": d.n, "mean_weight": d.mean_weight, "max_weight": d.max_weight,
                 "ess": d.ess, "clipped_fraction": d.clipped_fraction}
                for d in self.diagnostics
            ],
        }  # fmt: skip


def _check_names(estimators: Sequence[str], data: OPEData) -> tuple[EstimatorName, ...]:
    names: list[EstimatorName] = []
    for name in estimators:
        if name not in ESTIMATORS:
            raise OPEInputError(
                "estimators", f"unknown estimator {name!r}; expected some of {list(ESTIMATORS)}"
            )
        if name in _NEEDS_MODEL and data.q_logged is None:
            raise OPEInputError(
                "q_logged", f"estimator {name!r} needs a reward model (q_logged and q_policy)"
            )
        names.append(name)  # checked against ESTIMATORS
    return tuple(names)


def _check_clip(clip: float | None) -> None:
    if clip is not None and not (np.isfinite(clip) and clip > 0):
        raise OPEInputError("clip", f"must be a finite number > 0, got {clip!r}")


def _weighted(data: OPEData, name: EstimatorName, w: FloatArray, m: FloatArray) -> FloatArray:
    """Estimator value for each row of multiplicities ``m`` (shape (B, n)); ratios of weighted sums."""
    count = m.sum(axis=-1)
    if name == "ipw":
        return np.asarray(m @ (w * data.reward) / count)
    if name == "snipw":
        return np.asarray(m @ (w * data.reward) / (m @ w))
    assert data.q_logged is not None and data.q_policy is not None  # noqa: S101  # _check_names
    dm = m @ data.q_policy / count
    if name == "dm":
        return np.asarray(dm)
    residual = w * (data.reward - data.q_logged)
    if name == "dr":
        return np.asarray(dm + m @ residual / count)
    return np.asarray(dm + m @ residual / (m @ w))


def estimate(data: OPEData, name: str, *, clip: float | None = None) -> float:
    """Point estimate of one estimator over all rows of ``data``.

    A self-normalised estimate with every weight 0 is NaN (the policy never
    agrees with the logs).
    """
    (checked,) = _check_names([name], data)
    _check_clip(clip)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(_weighted(data, checked, data.weights(clip), np.ones((1, len(data))))[0])


def _diagnostics(data: OPEData, position: int | None, clip: float | None) -> Diagnostics:
    raw = data.weights()
    w = data.weights(clip)
    total, squares = float(w.sum()), float(np.square(w).sum())
    return Diagnostics(
        position, len(data), float(w.mean()), float(w.max()),
        total * total / squares if squares > 0 else 0.0, float(np.mean(raw > w)),
    )  # fmt: skip


def _multiplicities(data: OPEData, n_bootstrap: int, rng: np.random.Generator) -> Iterator[FloatArray]:
    """Bootstrap multiplicities per row, in chunks of replicates (cluster bootstrap when grouped)."""
    n = len(data)
    if data.group is None:
        codes, n_groups = np.arange(n), n
    else:
        _, codes = np.unique(data.group, return_inverse=True)
        n_groups = int(codes.max()) + 1
    step = max(1, min(_CHUNK, _CHUNK_CELLS // max(n, 1)))  # bound memory: step × n floats per chunk
    for start in range(0, n_bootstrap, step):
        b = min(step, n_bootstrap - start)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        counts = np.stack([np.bincount(row, minlength=n_groups) for row in draws]).astype(np.float64)
        yield counts[:, codes]


def evaluate(
    data: OPEData,
    estimators: Sequence[str] = ESTIMATORS,
    *,
    clip: float | None = None,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    per_position: bool = True,
) -> OPEReport:
    """Estimates with percentile-bootstrap ``1 − alpha`` intervals, overall and per position.

    Parameters
    ----------
    data
        The logs and the evaluation policy's probabilities.
    estimators
        Names among :data:`ESTIMATORS`.
    clip
        Clip importance weights at this value (``None``: no clipping).
    n_bootstrap
        Bootstrap replicates (0: the interval is the point estimate).
    alpha
        1 − confidence level.
    seed
        Seed of the bootstrap.
    per_position
        Also report every position on its own.
    """
    names = _check_names(estimators, data)
    _check_clip(clip)
    if not 0 < alpha < 1:
        raise OPEInputError("alpha", f"must be in (0, 1), got {alpha!r}")
    if n_bootstrap < 0:
        raise OPEInputError("n_bootstrap", f"must be >= 0, got {n_bootstrap}")
    parts: list[tuple[int | None, OPEData]] = [(None, data)]
    if per_position:
        parts += [(int(k), data.subset(data.position == k)) for k in np.unique(data.position)]
    rng = np.random.default_rng(seed)
    estimates: list[Estimate] = []
    diagnostics: list[Diagnostics] = []
    for position, part in parts:
        w = part.weights(clip)
        diagnostics.append(_diagnostics(part, position, clip))
        reps: dict[str, list[FloatArray]] = {name: [] for name in names}
        with np.errstate(invalid="ignore", divide="ignore"):
            for m in _multiplicities(part, n_bootstrap, rng) if n_bootstrap else ():
                for name in names:
                    reps[name].append(_weighted(part, name, w, m))
            for name in names:
                point = float(_weighted(part, name, w, np.ones((1, len(part))))[0])
                lo = hi = point
                if n_bootstrap:
                    values = np.concatenate(reps[name])
                    values = values[np.isfinite(values)]
                    lo, hi = (
                        np.quantile(values, [alpha / 2, 1 - alpha / 2]) if values.size else (np.nan, np.nan)
                    )
                estimates.append(Estimate(name, position, point, float(lo), float(hi), len(part)))
    return OPEReport(tuple(estimates), tuple(diagnostics), clip, alpha, n_bootstrap)
