"""Loading a stored model for serving: :func:`bandit.protocol.learner_from_bytes`, one VW workspace.

:meth:`bandit.protocol.BaseLearner.from_bytes` builds a learner from its
parameters and then restores its state. For :class:`~bandit.VWPolicy` that
opens two VW workspaces: an empty one in the constructor, thrown away at
once, and the one restored from the model's bytes. A workspace costs ~2.5 ms
of CPU whatever it holds (VW's option parsing and setup), and the scoring
worker reloads every VW model up to once a second per segment as the
learner publishes (``SMARTTRIP_MODEL_MIN_SWAP_S``): in the soak the model
loads were ~15 % of the worker's CPU (py-spy), two thirds of it VW's
workspaces. :func:`serving_learner` opens only the restored one.

The result is a plain :class:`~bandit.VWPolicy` (its class is set back once
loaded), equal to ``learner_from_bytes``'s: same weights, same scores, same
bytes (``tests/scoring/test_model_loader.py``). Every other kind, and
segmented blobs, go through ``learner_from_bytes`` unchanged.
"""

from __future__ import annotations

from bandit._format import unpack
from bandit.protocol import Learner, learner_from_bytes
from bandit.segments import SegmentedLearner
from bandit.vw_policy import VWPolicy

__all__ = ["serving_learner"]


class _OneWorkspaceVW(VWPolicy):
    """A :class:`VWPolicy` whose constructor opens no workspace; ``from_bytes`` opens the restored one.

    Only :func:`serving_learner` builds it, through ``from_bytes``, which always
    restores a workspace before returning (or raises); the object is then
    turned back into a plain ``VWPolicy``.
    """

    def _open(self, model_data: bytes | None) -> None:
        if model_data is not None:  # the constructor's empty workspace is skipped
            super()._open(model_data)


def serving_learner(data: bytes) -> Learner | SegmentedLearner:
    """``learner_from_bytes(data)``, with a VW model restored into its only workspace.

    Raises what ``learner_from_bytes`` raises (:class:`bandit.ModelFormatError` for bad bytes).
    """
    if unpack(data, None, range(1 << 16)).kind != VWPolicy.kind:
        return learner_from_bytes(data)
    policy: VWPolicy = _OneWorkspaceVW.from_bytes(data)
    policy.__class__ = VWPolicy  # restored in full: from here on an ordinary VWPolicy
    return policy
