"""Errors of the model store boundary (re-exported by :mod:`stream.model_store`).

Why a tree: the learner agent must tell "Redis is away, retry the same write"
from "someone else published first, reload and redo the batch" from "this
model is unsafe, keep serving the previous one"; a ``retriable`` flag says
which ones infrastructure may simply retry (aiokafka's ``KafkaError`` idea)::

    Exception
    └── ModelStoreError            (retriable = False)
        ├── ModelInputError        bad argument (name, version, offsets...); also a ValueError
        ├── VersionConflict        compare-and-set failed: current version != expected
        ├── GuardrailError         publish refused: non-finite/out-of-bounds weights, too few examples
        ├── UnknownModel           no version was ever published for (policy, segment)
        │   └── NotPromoted        gated read: versions exist, none promoted or pinned yet
        ├── UnknownVersion         that version does not exist (never, or trimmed from history)
        ├── CorruptRecord          stored metadata is not what this code wrote
        └── StoreUnavailable       (retriable = True) Redis unreachable, loading, read-only, cluster down

A :class:`VersionConflict` is *not* retriable as is: retrying the same write
would overwrite a newer model. The caller reloads the current version (see
:meth:`stream.model_store.ModelStore.get`) and redoes its work from there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import ClassVar, Final

import redis.exceptions as rex

from stream.guardrails import Violation

__all__ = [
    "CorruptRecord",
    "GuardrailError",
    "ModelInputError",
    "ModelStoreError",
    "NotPromoted",
    "StoreUnavailable",
    "UnknownModel",
    "UnknownVersion",
    "VersionConflict",
    "redis_errors",
]


class ModelStoreError(Exception):
    """Base of the model store's errors.

    Examples
    --------
    >>> err = VersionConflict("linucb", "adventure", expected=4, actual=5)
    >>> err.retriable, err.actual
    (False, 5)
    >>> StoreUnavailable("connection refused").retriable
    True
    """

    retriable: ClassVar[bool] = False


class ModelInputError(ModelStoreError, ValueError):
    """An argument is malformed; the message starts with the argument's name.

    >>> str(ModelInputError("segment", "must match [A-Za-z0-9_.-]{1,64}, got 'a b'"))
    "segment: must match [A-Za-z0-9_.-]{1,64}, got 'a b'"
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class VersionConflict(ModelStoreError):
    """A conditional write found another current version than the one expected."""

    def __init__(self, policy: str, segment: str, *, expected: int, actual: int) -> None:
        super().__init__(
            f"{policy}/{segment}: expected current version {expected}, found {actual}; "
            "reload the current model and redo the update"
        )
        self.policy = policy
        self.segment = segment
        self.expected = expected
        self.actual = actual


class GuardrailError(ModelStoreError):
    """Publish refused by the guardrails; the serving side keeps the previous version.

    ``violations`` holds one entry per failed check; ``reasons`` their messages
    and ``codes`` their machine codes (for a metric label).
    """

    def __init__(self, policy: str, segment: str, violations: Sequence[Violation]) -> None:
        self.policy = policy
        self.segment = segment
        self.violations = tuple(violations)
        super().__init__(f"{policy}/{segment}: publish refused: " + "; ".join(self.reasons))

    @property
    def reasons(self) -> list[str]:
        return [v.message for v in self.violations]

    @property
    def codes(self) -> list[str]:
        return [v.code for v in self.violations]


class UnknownModel(ModelStoreError):
    """No version of (policy, segment) exists."""

    def __init__(self, policy: str, segment: str) -> None:
        super().__init__(f"{policy}/{segment}: no model has been published")
        self.policy = policy
        self.segment = segment


class NotPromoted(UnknownModel):
    """A gated read found no promoted (or pinned) version: nothing may serve live traffic yet.

    A subclass of :class:`UnknownModel`, so a reader that falls back to the
    rules policy when no model exists does the same here.
    """

    def __init__(self, policy: str, segment: str) -> None:
        ModelStoreError.__init__(self, f"{policy}/{segment}: no version has been promoted (or pinned)")
        self.policy = policy
        self.segment = segment


class UnknownVersion(ModelStoreError):
    """The asked-for version does not exist (never published, or trimmed from history)."""

    def __init__(self, policy: str, segment: str, version: int) -> None:
        super().__init__(f"{policy}/{segment}: version {version} does not exist (or left the history)")
        self.policy = policy
        self.segment = segment
        self.version = version


class CorruptRecord(ModelStoreError):
    """A stored record cannot be decoded (written by something else, or by a newer schema)."""


class StoreUnavailable(ModelStoreError):
    """Redis could not serve the request now (network, loading, failover); retry later."""

    retriable: ClassVar[bool] = True


#: Errors after which the same request may succeed (network, failover, loading).
_RETRIABLE: Final = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.ReadOnlyError,
    rex.ClusterDownError,
    rex.TryAgainError,
    rex.MasterDownError,
    rex.SlotNotCoveredError,
)


@contextlib.contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Turn redis-py errors into :class:`StoreUnavailable` (retriable) or :class:`ModelStoreError`."""
    try:
        yield
    except _RETRIABLE as exc:
        raise StoreUnavailable(f"{what}: redis unavailable ({type(exc).__name__}: {exc})") from exc
    except rex.RedisError as exc:
        raise ModelStoreError(f"{what}: redis error ({type(exc).__name__}: {exc})") from exc
