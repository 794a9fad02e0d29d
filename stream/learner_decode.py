"""The learner's view of an ``examples`` record: the codec's rules, without building an :class:`Example`.

Why: the learner worker decodes every record of ``examples``, and
:func:`stream.codec.decode_example` spends a third of its time building the
frozen :class:`~stream.events.Example` and :class:`~stream.events.Labels`
objects, of whose 20 fields the learner reads 11. :func:`learn_row` checks
*the same rules* as the codec's fast path (``stream.codec._example_fast``) on
the parsed JSON and returns only those 11 fields in a :class:`LearnRow`;
at the first doubt (anything that path would not accept, or a payload that
is not plain bytes) it asks :func:`~stream.codec.decode_example`, which is
the reference: what it rejects raises its :class:`~stream.errors.EventError`
(a dead letter), what it accepts is returned with the same fields.
``tests/stream/test_learner_decode.py`` checks both against the codec on
valid and on mutated records.

>>> from stream.codec import encode
>>> from stream.events import Example, Labels
>>> ex = Example("r1:t1", "r1", "t1", "s1", "u1", "family", "rules", "m0", "phi-v1", (1.0, 0.5), 3,
...              0.8, 1.0, Labels(click=1), True, True, 1000.0)
>>> row = learn_row(encode(ex))
>>> row.segment, row.phi, row.position, row.clicked, row.randomized
('family', (1.0, 0.5), 3, True, False)
>>> row == LearnRow.of(ex)
True
"""

from __future__ import annotations

import math
from typing import NamedTuple

import orjson

from stream._fields import MAX_ID_LEN
from stream.codec import decode_example
from stream.events import (
    MAX_COUNT,
    MAX_PAYLOAD_BYTES,
    MAX_PHI_DIM,
    MAX_POSITION,
    MAX_TS,
    SCHEMA_VERSION,
    Example,
)

__all__ = ["LearnRow", "learn_row"]

_NUMBERS = frozenset({int, float})
_STRS = (
    "request_id",
    "trip_id",
    "session_id",
    "user_id",
    "segment",
    "policy",
    "model_version",
    "feature_version",
)
_LABEL_COUNTS = ("click", "save", "booking_start", "contact")


class LearnRow(NamedTuple):
    """What the learner reads of one example (attribute names as on :class:`~stream.events.Example`)."""

    example_id: str
    revision: int
    segment: str
    policy: str
    phi: tuple[float, ...]
    position: int
    propensity: float
    reward: float
    clicked: bool
    randomized: bool
    ts: float

    @classmethod
    def of(cls, ex: Example) -> LearnRow:
        """The fields of a decoded example."""
        return cls(ex.example_id, ex.revision, ex.segment, ex.policy, ex.phi, ex.position, ex.propensity,
                   ex.reward, ex.clicked, ex.randomized, ex.ts)  # fmt: skip


def learn_row(raw: bytes) -> LearnRow:
    """Decode and validate one ``examples`` record as the codec does; raises :class:`~stream.errors.EventError`."""
    if type(raw) is bytes and len(raw) <= MAX_PAYLOAD_BYTES:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if type(obj) is dict:
            try:
                row = _fast(obj)
            except OverflowError:  # fsum of huge finite values: the codec decides
                row = None
            if row is not None:
                return row
    return LearnRow.of(decode_example(raw))


def _fast(obj: dict[str, object]) -> LearnRow | None:
    """``stream.codec._example_fast``'s checks, in its order; None where it would return None."""
    if obj.get("v") != SCHEMA_VERSION or obj.get("kind") != "example":
        return None
    strs = [obj.get(k) for k in _STRS]
    for value in strs:
        if type(value) is not str or not 0 < len(value) <= MAX_ID_LEN:
            return None
    example_id = obj.get("example_id")
    if example_id != f"{strs[0]}:{strs[1]}":
        return None
    phi, labels = obj.get("phi"), obj.get("labels")
    position, revision = obj.get("position"), obj.get("revision")
    propensity, reward, ts = obj.get("propensity"), obj.get("reward"), obj.get("ts")
    clicked, examined, correction = obj.get("clicked"), obj.get("examined"), obj.get("is_correction")
    randomized = obj.get("randomized", False)
    if type(randomized) is not bool:
        return None
    if type(phi) is not list or len(phi) > MAX_PHI_DIM or not set(map(type, phi)) <= _NUMBERS:
        return None
    if type(labels) is not dict or type(position) is not int or type(revision) is not int:
        return None
    if type(propensity) not in _NUMBERS or type(reward) not in _NUMBERS or type(ts) not in _NUMBERS:
        return None
    if type(clicked) is not bool or type(examined) is not bool or correction is not (revision > 0):
        return None
    counts = [labels.get(k) for k in _LABEL_COUNTS]
    dwell = labels.get("dwell_s")
    if any(type(c) is not int or not 0 <= c <= MAX_COUNT for c in counts) or type(dwell) not in _NUMBERS:
        return None
    row = tuple(map(float, phi))
    if not (
        0 <= position <= MAX_POSITION
        and 0 <= revision <= MAX_COUNT
        and 0 < propensity <= 1  # type: ignore[operator]
        and math.isfinite(reward)  # type: ignore[arg-type]
        and 0 < ts <= MAX_TS  # type: ignore[operator]
        and 0 <= dwell < math.inf  # type: ignore[operator]
        and math.isfinite(math.fsum(row))
    ):
        return None
    return LearnRow(example_id, revision, strs[4], strs[5], row, position, float(propensity), float(reward),  # type: ignore[arg-type]
                    clicked, randomized, float(ts))  # type: ignore[arg-type]  # fmt: skip
