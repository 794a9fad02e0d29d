"""From logged bandit feedback to :class:`~bandit.ope.OPEData`, for a policy table or a scoring model.

:class:`BanditLogs` is the common form of our examples and of the Open Bandit
Dataset: one row per shown item with its action id, 0-based position,
reward, logging propensity, a context vector, and the slate it belongs to.

Policy tables (context-free, ``π_e(a | k) = table[a, k]``, see
:mod:`bandit.ope_tables`) work on any logs. The logistic reward model for a
table is additive in context, action and position (features: the context,
one-hot action, one-hot position), so ``q̂_π`` sums over every action without
materialising an (n, actions, positions) array. Its Newton steps cost
O(actions³): with thousands of actions (our trip ids) give a reward table or
``none`` instead.

Scoring models (one of our learners) work on logs with φ rows (ours): the
impressions log the shown slate, not the candidate set it was drawn from, so
the evaluation policy re-ranks the logged slate — at position ``j`` it is
ε-greedy over the slate's items not placed above ``j``
(:mod:`scoring.exploration`'s rule), conditional on the logged prefix, like
the logged propensities. This is exact for what it measures (ranking the
shown items); it does not see items the logging policy never showed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from bandit.ope import OPEData
from bandit.ope_validation import OPEInputError
from bandit.reward_model import CrossFittedLogistic

__all__ = ["BanditLogs", "RewardModelSpec", "model_policy_data", "table_policy_data"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
RewardModelSpec = Literal["none", "logistic"] | FloatArray
_CHUNK = 4096


@dataclass(frozen=True)
class BanditLogs:
    """Logged feedback, one row per shown item (all arrays of length n)."""

    reward: FloatArray
    action: IntArray
    position: IntArray
    pscore: FloatArray
    context: FloatArray  # (n, c); may have c = 0
    slate: IntArray
    action_names: tuple[str, ...]
    phi: FloatArray | None = None  # (n, d) features of the shown item (ours)
    segment: tuple[str, ...] = field(default=())
    variant: tuple[str, ...] = field(default=())

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    @property
    def len_list(self) -> int:
        return int(self.position.max()) + 1

    def __len__(self) -> int:
        return len(self.reward)


def _onehot(values: IntArray, width: int) -> FloatArray:
    out = np.zeros((len(values), width))
    out[np.arange(len(values)), values] = 1.0
    return out


def table_policy_data(
    logs: BanditLogs, table: FloatArray, *, reward_model: RewardModelSpec = "logistic",
    folds: int = 5, seed: int = 0,
) -> OPEData:  # fmt: skip
    """OPE inputs for a context-free policy table of shape (n_actions, ≥ len_list)."""
    if table.shape[0] != logs.n_actions:
        raise OPEInputError(
            "policy_table", f"has {table.shape[0]} rows; the logs have {logs.n_actions} actions"
        )
    if table.shape[1] < logs.len_list:
        raise OPEInputError(
            "policy_table", f"has {table.shape[1]} position columns; the logs have {logs.len_list}"
        )
    pi_e = table[logs.action, logs.position]
    q_logged = q_policy = None
    if isinstance(reward_model, np.ndarray):
        if reward_model.shape[0] != logs.n_actions or reward_model.shape[1] < logs.len_list:
            raise OPEInputError("reward_table", f"must have shape ({logs.n_actions}, >= {logs.len_list})")
        q_logged = reward_model[logs.action, logs.position]
        q_policy = np.sum(table * reward_model[:, : table.shape[1]], axis=0)[logs.position]
    elif reward_model == "logistic":
        A, L = logs.n_actions, logs.len_list
        X = np.hstack([logs.context, _onehot(logs.action, A), _onehot(logs.position, L)])
        model = CrossFittedLogistic.fit(X, logs.reward, folds=folds, seed=seed)
        c = logs.context.shape[1]
        coef = model.coef[model.fold]  # (n, c + A + L + 1)
        base = np.einsum("ic,ic->i", logs.context, coef[:, :c]) + coef[:, -1]
        z_logged = (
            base
            + coef[np.arange(len(logs)), c + logs.action]
            + coef[np.arange(len(logs)), c + A + logs.position]
        )
        q_logged = model.scale / (1.0 + np.exp(-z_logged))
        q_policy = np.empty(len(logs))
        for start in range(0, len(logs), _CHUNK):
            sl = np.arange(start, min(start + _CHUNK, len(logs)))
            pos = logs.position[sl]
            z = (base[sl] + coef[sl, c + A + pos])[:, None] + coef[sl, c : c + A]  # (chunk, A)
            q_policy[sl] = np.sum(table[:, pos].T * (model.scale / (1.0 + np.exp(-z))), axis=1)
    elif reward_model != "none":
        raise OPEInputError("reward_model", f"must be 'none', 'logistic' or a table, got {reward_model!r}")
    return OPEData.from_arrays(
        reward=logs.reward, position=logs.position, pscore=logs.pscore, pi_e=pi_e,
        q_logged=q_logged, q_policy=q_policy, group=logs.slate,
    )  # fmt: skip


def _slate_policy(scores: FloatArray, epsilon: float) -> FloatArray:
    """Conditional distributions of one slate (items in logged position order): row ``j`` is
    ``π_e(· | items 0..j−1 placed)``, ε-greedy over the items not placed yet."""
    m = len(scores)
    dist = np.zeros((m, m))
    remaining = np.ones(m, dtype=bool)
    for j in range(m):
        idx = np.flatnonzero(remaining)
        best = idx[np.argmax(scores[idx])]  # ties: the lower index, as scoring.topk
        dist[j, idx] = epsilon / len(idx)
        dist[j, best] += 1.0 - epsilon
        remaining[j] = False
    return dist


def model_policy_data(
    logs: BanditLogs, scores: npt.ArrayLike, *, epsilon: float = 0.0, reward_model: Literal["none", "logistic"] = "logistic",
    folds: int = 5, seed: int = 0,
) -> OPEData:  # fmt: skip
    """OPE inputs for a scoring policy re-ranking each logged slate (ε-greedy per position)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (len(logs),) or not np.all(np.isfinite(s)):
        raise OPEInputError("scores", f"must be {len(logs)} finite values, one per logged item")
    if not 0 <= epsilon <= 1:
        raise OPEInputError("epsilon", f"must be in [0, 1], got {epsilon!r}")
    q_all = None
    if reward_model == "logistic":
        if logs.phi is None:
            raise OPEInputError("phi", "the logistic reward model of a scoring policy needs φ rows")
        L = logs.len_list
        X = np.hstack([logs.phi, _onehot(logs.position, L)])
        model = CrossFittedLogistic.fit(X, logs.reward, folds=folds, seed=seed)
        q_all = model
    pi_e = np.zeros(len(logs))
    q_logged = np.zeros(len(logs)) if q_all is not None else None
    q_policy = np.zeros(len(logs)) if q_all is not None else None
    order_all = np.lexsort((logs.position, logs.slate))
    bounds = np.flatnonzero(np.r_[True, logs.slate[order_all][1:] != logs.slate[order_all][:-1], True])
    for a, b in itertools.pairwise(bounds):
        rows = order_all[a:b]  # this slate's rows, by position
        m = len(rows)
        dist = _slate_policy(s[rows], epsilon)
        pi_e[rows] = dist[np.arange(m), np.arange(m)]
        if q_all is not None and logs.phi is not None:
            # q̂ of every slate item placed at every logged position of the slate, with each row's own fold.
            pos = logs.position[rows]
            feats = np.concatenate(
                [np.repeat(logs.phi[rows][None, :, :], m, axis=0),
                 np.broadcast_to(_onehot(pos, logs.len_list)[:, None, :], (m, m, logs.len_list))], axis=2,
            )  # fmt: skip
            beta = q_all.coef[q_all.fold[rows]]  # (m, d + 1): row j's model
            z = np.einsum("jad,jd->ja", feats, beta[:, :-1]) + beta[:, -1:]
            q = q_all.scale / (1.0 + np.exp(-z))  # q[j, item]
            assert q_logged is not None and q_policy is not None  # noqa: S101
            q_logged[rows] = q[np.arange(m), np.arange(m)]
            q_policy[rows] = np.sum(dist * q, axis=1)
    return OPEData.from_arrays(
        reward=logs.reward, position=logs.position, pscore=logs.pscore, pi_e=pi_e,
        q_logged=q_logged, q_policy=q_policy, group=logs.slate,
    )  # fmt: skip
