"""Learning a columnar replay's examples exactly as the learner agent's runtime learns them.

:meth:`stream.learner_runtime.LearnerRuntime.learn_decoded` takes one
:class:`~stream.events.Example` object per shown trip; the columnar replay
has arrays instead. :func:`learn_arrays` makes, per micro-batch and
segment, the calls ``_learn_segment`` makes — the serving policies' click
drift, then per policy the loss metric, the loss drift (and its response)
and ``learn_many`` — on the same rows in the same order, through the
runtime's own models and drift monitor (whose ADWIN feed is redone here
without River's per-row Python properties: :func:`stream.learner_drift.feed`). The examples' de-duplication is
not needed: the columnar replay only runs on inputs whose ``(example_id,
revision)`` keys are all distinct. ``tests/analysis/test_replay_columnar.py``
checks the models against the careful replay's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from bandit.drift import brier_losses
from stream.learner_drift import feed
from stream.learner_runtime import LearnerRuntime
from stream.replay import ReplayStats

__all__ = ["learn_arrays"]


def learn_arrays(
    runtime: LearnerRuntime,
    stats: ReplayStats,
    *,
    slates: Sequence[tuple[str, str, int, int]],
    batches: Sequence[Sequence[int]],
    X: npt.NDArray[np.float64],
    rewards: npt.NDArray[np.float64],
    clicked: npt.NDArray[np.bool_],
    positions: npt.NDArray[np.int64],
    propensities: npt.NDArray[np.float64],
    randomized: npt.NDArray[np.bool_],
) -> None:
    """Learn ``batches`` (slate indices in emission order, one list per micro-batch).

    ``slates[i]`` is ``(segment, serving policy, first item row, items)``;
    item rows index the arrays.
    """
    seq = 0  # offsets of the examples as the fast path numbers them (one partition, emission order)
    for batch in batches:
        by_segment: dict[str, list[tuple[int, int]]] = {}  # segment -> [(slate, offset of its first item)]
        for i in batch:
            by_segment.setdefault(slates[i][0], []).append((i, seq))
            seq += slates[i][3]
        for segment, mine in by_segment.items():
            rows = np.concatenate([np.arange(slates[i][2], slates[i][2] + slates[i][3]) for i, _ in mine])
            served = np.repeat(
                np.array([slates[i][1] for i, _ in mine], dtype=object), [slates[i][3] for i, _ in mine]
            )
            last_offset = mine[-1][1] + slates[mine[-1][0]][3] - 1
            _learn_segment(runtime, segment, rows, served, last_offset, X, rewards, clicked, positions,
                           propensities, randomized)  # fmt: skip
            stats.examples += len(rows)


def _learn_segment(
    runtime: LearnerRuntime,
    segment: str,
    rows: npt.NDArray[np.intp],
    served: npt.NDArray[np.object_],
    last_offset: int,
    X_all: npt.NDArray[np.float64],
    rewards: npt.NDArray[np.float64],
    clicked: npt.NDArray[np.bool_],
    positions: npt.NDArray[np.int64],
    propensities: npt.NDArray[np.float64],
    randomized: npt.NDArray[np.bool_],
) -> None:
    X, y, pos = X_all[rows], rewards[rows], positions[rows]
    prop, rand, click = propensities[rows], randomized[rows], clicked[rows]
    drift = runtime.drift
    for policy in sorted(set(served.tolist()) & {"rules", *runtime.policies}):
        model = runtime._slot(policy, segment).learner if policy in runtime.policies else None
        clicks = np.asarray(click[served == policy], dtype=np.float64)
        drift._respond(feed(drift, policy, segment, "clicks", clicks), model, "down")  # = observe_clicks
    for policy in runtime.policies:
        slot = runtime._slot(policy, segment)
        runtime._track_loss(policy, segment, slot, X, y)
        losses = brier_losses(slot.learner, X, y > 0, pos.tolist())  # = observe_model
        if losses is not None:
            drift._respond(feed(drift, policy, segment, "loss", losses), slot.learner, "up")
        slot.learner.learn_many(X, y, positions=pos, propensities=prop, randomized=rand)
        slot.offsets[0] = max(last_offset, slot.offsets.get(0, -1))
        slot.dirty = True
        runtime.metrics.examples.labels(policy, segment, "learned").inc(len(rows))
