"""The topic contract: impression, interaction, example and dead-letter records.

Why: the scoring worker, the join agent, the learners and the analysts' replay
tools all exchange these records; this module says what each field means and
:mod:`stream.codec` says how they travel as bytes (versioned JSON) and how
untrusted bytes are validated. The records themselves do not re-check their
fields: build them in code, or get them from a ``decode_*`` function.

Limits of the contract (enforced by :mod:`stream.codec`): ids and names at most
128 characters; ``ts`` in float seconds since the epoch; a slate has 1 to 1000
distinct trips at distinct non-negative positions; φ rows have one length per
slate (at most 256 finite values); propensities are in (0, 1].

>>> item = SlateItem(trip_id="t9", position=0, score=1.5, propensity=0.8, phi=(1.0, 0.0))
>>> Labels(click=1, dwell_s=12.0).engaged
True
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Final, Literal

from stream._fields import MAX_TEXT_LEN
from stream.errors import EventError

__all__ = [
    "EXCERPT_BYTES",
    "INTERACTION_TYPES",
    "MAX_PAYLOAD_BYTES",
    "MAX_PHI_DIM",
    "MAX_SLATE_SIZE",
    "SCHEMA_VERSION",
    "DeadLetter",
    "EventError",
    "Example",
    "Impression",
    "Interaction",
    "InteractionType",
    "Labels",
    "Record",
    "SlateItem",
]

SCHEMA_VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 1 << 20
MAX_SLATE_SIZE: Final = 1000
MAX_PHI_DIM: Final = 256
MAX_POSITION: Final = 99_999
MAX_TS: Final = 4_102_444_800.0  # 2100-01-01T00:00:00Z: catches millisecond timestamps
MAX_COUNT: Final = 1_000_000_000
EXCERPT_BYTES: Final = 512

InteractionType = Literal["click", "save", "booking_start", "contact", "dwell"]
INTERACTION_TYPES: Final[tuple[InteractionType, ...]] = ("click", "save", "booking_start", "contact", "dwell")


@dataclass(frozen=True, slots=True)
class SlateItem:
    """One shown trip: raw 0-based ``position`` as displayed, the policy's
    ``score``, the logging ``propensity`` (what IPS divides by) and the φ row
    the policy scored, so learners never rebuild features. ``randomized``: the
    trip was drawn uniformly from the candidates left (the exploration's
    uniform branch), so its relevance does not depend on its position — the
    learners estimate the examination curve from these placements."""

    trip_id: str
    position: int
    score: float
    propensity: float
    phi: tuple[float, ...]
    randomized: bool = False


@dataclass(frozen=True, slots=True)
class Impression:
    """A ranked slate served to a session (topic ``impressions``, key ``session_id``).

    ``user_id`` is already pseudonymous (the scoring worker hashes it);
    ``feature_version`` (and optionally ``phi_names``) identify φ's columns;
    ``catalog_version`` lets φ rows be empty and rebuilt from the catalog.
    """

    request_id: str
    session_id: str
    user_id: str
    segment: str
    policy: str
    model_version: str
    feature_version: str
    ts: float
    slate: tuple[SlateItem, ...]
    phi_names: tuple[str, ...] = ()
    catalog_version: str | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    """A user action on a shown trip (topic ``interactions``, key ``session_id``).

    ``value`` is dwell seconds for ``dwell`` and ignored otherwise;
    ``request_id`` is set when the frontend knows which slate was clicked.
    """

    event_id: str
    session_id: str
    trip_id: str
    type: InteractionType
    ts: float
    value: float = 0.0
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Labels:
    """Raw engagement of one shown trip: counts per type and total dwell seconds."""

    click: int = 0
    save: int = 0
    booking_start: int = 0
    contact: int = 0
    dwell_s: float = 0.0

    @property
    def engaged(self) -> bool:
        """Any evidence that the user looked at the trip."""
        return self.click + self.save + self.booking_start + self.contact > 0 or self.dwell_s > 0


@dataclass(frozen=True, slots=True)
class Example:
    """One shown trip with its outcome (topic ``examples``, key ``segment``).

    ``example_id`` is ``request_id:trip_id``; ``revision`` is 0 when the
    attribution window closes and grows with each late correction, so
    ``(example_id, revision)`` is unique and the highest revision is final.
    ``position`` is the raw displayed position, kept for position-bias
    correction; ``ts`` is the impression's time.
    """

    example_id: str
    request_id: str
    trip_id: str
    session_id: str
    user_id: str
    segment: str
    policy: str
    model_version: str
    feature_version: str
    phi: tuple[float, ...]
    position: int
    propensity: float
    reward: float
    labels: Labels
    clicked: bool
    examined: bool
    ts: float
    revision: int = 0
    randomized: bool = False  # the slate item's flag (see SlateItem)

    @property
    def is_correction(self) -> bool:
        """Whether this example re-states an already emitted one after a late event."""
        return self.revision > 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be used, with why (topic ``deadletter``, key ``source_topic``).

    ``excerpt_b64`` holds at most the first 512 bytes of the original,
    base64-encoded so binary garbage is safe to log; ``size`` is the full
    length. ``ts`` is the event time when known, else the broker timestamp.
    """

    source_topic: str
    reason: str
    stage: str
    detail: str
    excerpt_b64: str
    size: int
    ts: float

    @classmethod
    def from_bytes(
        cls, raw: bytes, *, source_topic: str, reason: str, stage: str, detail: str, ts: float
    ) -> DeadLetter:
        """Dead letter for ``raw`` with a bounded excerpt and a bounded ``detail``."""
        excerpt = base64.b64encode(bytes(raw[:EXCERPT_BYTES])).decode("ascii")
        return cls(source_topic, reason, stage, detail[:MAX_TEXT_LEN], excerpt, len(raw), ts)

    @classmethod
    def from_error(cls, raw: bytes, error: EventError, *, source_topic: str, ts: float) -> DeadLetter:
        """Dead letter for a record that failed decoding."""
        return cls.from_bytes(
            raw, source_topic=source_topic, reason=error.reason, stage="decode", detail=str(error), ts=ts
        )

    def excerpt(self) -> bytes:
        """The excerpt of the original bytes."""
        return base64.b64decode(self.excerpt_b64)


Record = Impression | Interaction | Example | DeadLetter
