"""Errors of the stream package boundary.

Why one type: a Kafka agent must turn *any* bad record into a dead letter
without knowing what went wrong, yet operators need a reason to count and a
message that names the field. So every decoding failure is an
:class:`EventError` whose ``reason`` is a short machine code and whose message
starts with the field path::

    ValueError
    └── EventError            (reason: bad_json | too_large | unknown_version | invalid_field)

Join-stage problems (orphan, late, mismatched clicks) are not exceptions: the
session join returns them as dead letters, see :mod:`stream.session`.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["DECODE_REASONS", "JOIN_REASONS", "DecodeReason", "EventError", "JoinReason"]

DecodeReason = Literal["bad_json", "too_large", "unknown_version", "invalid_field"]
DECODE_REASONS: Final[tuple[DecodeReason, ...]] = (
    "bad_json",
    "too_large",
    "unknown_version",
    "invalid_field",
)

JoinReason = Literal["orphan", "too_late", "not_in_slate", "outside_window", "session_mismatch"]
JOIN_REASONS: Final[tuple[JoinReason, ...]] = (
    "orphan",
    "too_late",
    "not_in_slate",
    "outside_window",
    "session_mismatch",
)


class EventError(ValueError):
    """A record failed decoding or validation.

    Parameters
    ----------
    field
        Path of the offending field, e.g. ``slate[3].propensity``; ``payload``
        when the problem is the whole record.
    problem
        What is wrong, e.g. ``must be in (0, 1], got 0``.
    reason
        Machine code for dead-letter counting (one of :data:`DECODE_REASONS`).

    Examples
    --------
    >>> err = EventError("slate[3].propensity", "must be in (0, 1], got 0")
    >>> str(err), err.reason
    ('slate[3].propensity: must be in (0, 1], got 0', 'invalid_field')
    """

    retriable: Final = False  # a bad record stays bad: never retry, dead-letter it

    def __init__(self, field: str, problem: str, *, reason: DecodeReason = "invalid_field") -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.reason: DecodeReason = reason

    def __reduce__(self) -> tuple[type[EventError], tuple[str, str], dict[str, object]]:
        # Keyword-only ``reason`` would be lost by ValueError's default pickling.
        return (type(self), (self.field, self.problem), {"reason": self.reason})
