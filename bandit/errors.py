"""Errors of the bandit package boundary.

Every error a learner raises on purpose is a :class:`LearnerError`, itself a
``ValueError`` so callers that only know "bad value" still catch it. The
message starts with the offending argument (``X``, ``propensities[3]``,
``alpha``…) so a dead-letter record or a log line says what to fix::

    ValueError
    └── LearnerError              (retriable = False)
        ├── LearnerInputError     bad training or serving input (shape, non-finite, range)
        ├── LearnerConfigError    bad constructor argument
        └── ModelFormatError      bytes that are not a model this code can load

None of them is retriable: a bad example stays bad (dead-letter it), a bad
model blob stays bad (fall back to the previous version or the rule baseline).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["LearnerConfigError", "LearnerError", "LearnerInputError", "ModelFormatError"]


class LearnerError(ValueError):
    """Base of the learners' errors; the message names the argument.

    Examples
    --------
    >>> err = LearnerInputError("propensity", "must be in (0, 1], got 0.0")
    >>> str(err), err.argument, err.retriable
    ('propensity: must be in (0, 1], got 0.0', 'propensity', False)
    """

    retriable: ClassVar[bool] = False

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


class LearnerInputError(LearnerError):
    """Training or serving input is malformed (shape, dtype, non-finite, range)."""


class LearnerConfigError(LearnerError):
    """A constructor argument is out of range or inconsistent."""


class ModelFormatError(LearnerError):
    """Bytes are not a model of the expected kind and a supported version, or are corrupt."""
