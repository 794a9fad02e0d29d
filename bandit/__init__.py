"""Learners for ranking trips: LinUCB, logistic regression, a VW policy, per segment.

All follow one protocol (:mod:`bandit.protocol`): ``score_many`` / ``rank`` for
serving, ``learn_one`` / ``learn_many`` for training, ``to_bytes`` /
``from_bytes`` in a safe versioned format, ``clone``. Position bias is
corrected by inverse examination weighting (:mod:`bandit.position_bias`).
"""

from __future__ import annotations

from bandit.errors import LearnerConfigError, LearnerError, LearnerInputError, ModelFormatError
from bandit.lin_ucb import LinUCB
from bandit.logistic import LogisticLearner
from bandit.position_bias import ExaminationEstimator, PositionBias, PositionCorrection
from bandit.protocol import BaseLearner, Learner, learner_from_bytes
from bandit.segments import SegmentedLearner
from bandit.vw_policy import VWPolicy

__all__ = [
    "BaseLearner",
    "ExaminationEstimator",
    "Learner",
    "LearnerConfigError",
    "LearnerError",
    "LearnerInputError",
    "LinUCB",
    "LogisticLearner",
    "ModelFormatError",
    "PositionBias",
    "PositionCorrection",
    "SegmentedLearner",
    "VWPolicy",
    "learner_from_bytes",
]
