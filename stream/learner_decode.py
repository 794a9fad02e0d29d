"""The learner's view of an ``examples`` record: the codec's rules, without building an :class:`Example`.

Why: the learner worker decodes every record of ``examples``, and
:func:`stream.codec.decode_examples` spends a third of its time building the
frozen :class:`~stream.events.Example` and :class:`~stream.events.Labels`
objects, of whose 20 fields the learner reads 11. :func:`learn_rows` checks
*the same rules* as the codec's fast path (:func:`stream.codec.example_fields`) on
the parsed JSON — of a one-example record, or of each item of a slate's — and
returns only those 11 fields per example in :class:`LearnRow` tuples; at the first
doubt (anything that path would not accept, or a payload that is not plain
bytes) it asks :func:`~stream.codec.decode_examples`, which is the reference:
what it rejects raises its :class:`~stream.errors.EventError` (a dead letter),
what it accepts is returned with the same fields.
``tests/stream/test_learner_decode.py`` checks both against the codec on
valid and on mutated records.

>>> from stream.codec import encode
>>> from stream.events import Example, Labels
>>> ex = Example("r1:t1", "r1", "t1", "s1", "u1", "family", "rules", "m0", "phi-v1", (1.0, 0.5), 3,
...              0.8, 1.0, Labels(click=1), True, True, 1000.0)
>>> [row] = learn_rows(encode(ex))
>>> row.segment, row.phi, row.position, row.clicked, row.randomized
('family', (1.0, 0.5), 3, True, False)
>>> row == LearnRow.of(ex)
True
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from stream.codec import decode_examples, example_fields
from stream.events import MAX_PAYLOAD_BYTES, MAX_SLATE_SIZE, SCHEMA_VERSION, Example

__all__ = ["LearnRow", "learn_rows"]


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


def learn_rows(raw: bytes) -> list[LearnRow]:
    """The examples of one ``examples`` record (one example, or a slate's), as
    :func:`stream.codec.decode_examples` decodes them; raises :class:`~stream.errors.EventError`.

    A slate's record is valid as a whole or not at all (the codec's rule).
    """
    if type(raw) is bytes and len(raw) <= MAX_PAYLOAD_BYTES:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if type(obj) is dict:
            try:
                rows = _fast_many(obj)
            except OverflowError:  # fsum of huge finite values: the codec decides
                rows = None
            if rows is not None:
                return rows
    return [LearnRow.of(ex) for ex in decode_examples(raw)]


def _fast_many(obj: dict[str, object]) -> list[LearnRow] | None:
    if obj.get("kind") != "examples":
        row = _fast(obj)
        return None if row is None else [row]
    version, items = obj.get("v"), obj.get("examples")
    if type(version) is not int or version != SCHEMA_VERSION:
        return None
    if type(items) is not list or not 0 < len(items) <= MAX_SLATE_SIZE:
        return None
    rows = []
    for item in items:
        row = _fast(item) if type(item) is dict else None
        if row is None:
            return None
        rows.append(row)
    return rows


def _fast(obj: dict[str, object]) -> LearnRow | None:
    """The codec's fast-path checks (:func:`stream.codec.example_fields`); None where they would give None."""
    f = example_fields(obj)
    if f is None:
        return None
    strs, row, position, revision, propensity, reward, ts, clicked, _, randomized, _, _ = f
    return LearnRow(f"{strs[0]}:{strs[1]}", revision, strs[4], strs[5], row, position, propensity, reward,
                    clicked, randomized, ts)  # fmt: skip
