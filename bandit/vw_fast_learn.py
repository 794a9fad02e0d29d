"""VW learning without the per-row Python wrappers: the same VW examples, built and learned for less.

Why: :meth:`bandit.VWPolicy.learn_many` spends ~20 µs of Python per shown trip
around ~2.5 µs of VW learning: a wrapper :class:`vowpal_wabbit_next.Example`
per row, two boolean-mask copies of the φ row, the wrapper's ``set_label``
type dispatch and ``learn_one``'s label-type check and list rebuild.
:class:`FastVWPolicy` builds *the same examples* — namespace ``a``, the same
hashed indices and float32 values (φ's non-zero columns, in column order),
the same :class:`~vowpal_wabbit_next.CBLabel` per row, the same shared
examples first — and hands them to the workspace's core ``learn_multi_ex_one``,
the call :meth:`vowpal_wabbit_next.Workspace.learn_one` ends in. The
non-zero entries of a whole batch are gathered once with numpy; each row
pushes a slice (a view) of them.

Same parameters, state, bytes (``kind`` ``vw_cb``) and models: bit for bit
(``tests/bandit/test_vw_fast_learn.py`` compares the serialised models).
When the installed ``vowpal-wabbit-next`` lacks the private core objects
used here, :data:`AVAILABLE` is False and :func:`bandit.fast_kernels.accelerate`
leaves VW learners as they are.

>>> import numpy as np
>>> from bandit import VWPolicy
>>> rng = np.random.default_rng(0)
>>> X, y = (rng.random((50, 20)) < 0.3).astype(float), (rng.random(50) < 0.3).astype(float)
>>> positions = rng.integers(0, 10, 50)
>>> ref, fast = VWPolicy(bits=16, seed=0), FastVWPolicy(bits=16, seed=0)
>>> ref.learn_many(X, y, positions=positions)
>>> fast.learn_many(X, y, positions=positions)
>>> fast.to_bytes() == ref.to_bytes()
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import vowpal_wabbit_next as vw

from bandit.protocol import Batch, as_batch
from bandit.vw_policy import Context, FloatArray, VWPolicy

__all__ = ["AVAILABLE", "FastVWPolicy"]

_A = ord("a")  # the action namespace, as ``Example.__getitem__("a")`` converts it


def _core_api_present() -> bool:
    core = getattr(vw, "_core", None)
    example = getattr(core, "Example", None)
    workspace = getattr(core, "Workspace", None)
    feature_group = getattr(core, "FeatureGroupRef", None)
    return all(
        hasattr(obj, name)
        for obj, name in ((example, "_set_label"), (example, "__getitem__"), (feature_group, "truncate_to"),
                          (workspace, "learn_multi_ex_one"), (vw.Example(), "_example"))
    )  # fmt: skip


#: Whether this ``vowpal-wabbit-next`` exposes the core objects :class:`FastVWPolicy` uses.
AVAILABLE: bool = _core_api_present()


class FastVWPolicy(VWPolicy):
    """:class:`~bandit.VWPolicy` whose per-row learning loop calls VW's core directly.

    Same parameters, state, bytes and learned models (bit for bit) as the parent.
    One action example and one label are reused for every row: the bindings set
    an example up for each learn call and restore it afterwards (they expose no
    ``setup_example``/``finish_example``), and each row truncates the features
    and overwrites the label before it is learned.
    """

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
        """:meth:`VWPolicy.learn_many`; without ``contexts``, no per-row empty shared list is built."""
        if contexts is not None:
            super().learn_many(X, rewards, positions=positions, propensities=propensities,
                               randomized=randomized, contexts=contexts)  # fmt: skip
            return
        self._learn(as_batch(X, rewards, positions, propensities, randomized, self.n_features))

    def _learn_rows(self, batch: Batch, examination: FloatArray, weight: FloatArray) -> None:
        n = len(batch)
        pending = self._pending_shared
        shared = [[s._example for s in row] for row in pending] if pending else None
        X32 = batch.X.astype(np.float32)
        nonzero = X32 != 0
        # Row-major: each row's non-zero columns in column order, as the parent's per-row mask gives them.
        index: Any = self._index[np.nonzero(nonzero)[1]]  # the stub types push_many_features oddly
        values = X32[nonzero]
        ends = np.cumsum(nonzero.sum(axis=1)).tolist()
        costs = (-batch.rewards / examination).tolist()
        probs = batch.propensities.tolist() if self.importance_weights else [1.0] * n
        weights = weight.tolist()
        learn = self._ws._workspace.learn_multi_ex_one
        action = vw._core.Example()
        features = action[_A]
        label = vw.CBLabel(label=(0, 0.0, 1.0))
        alone = [action]
        start = 0
        for i in range(n):
            end = ends[i]
            features.truncate_to(0)
            features.push_many_features(index[start:end], values[start:end])
            label.label = (0, costs[i], probs[i])
            label.weight = weights[i]
            action._set_label(label)
            learn([*shared[i], action] if shared else alone)
            start = end
