"""The ``examples`` records of a closed slate, encoded with the slate's shared fields written once.

A closed slate's examples go out as one record (:func:`pack_examples`,
``SMARTTRIP_EXAMPLES_PER_RECORD=slate``, the default): ``{"v": 1, "kind":
"examples", "examples": [...]}``, each item exactly a one-example record.
Why: every Kafka record costs the learner's Faust consumer ~100 µs of CPU
whatever it holds, and a slate shows ~10 trips; one record per slate also
spares the join's producer and the broker nine records in ten. The learners
and tools read both forms (:func:`stream.codec.decode_examples`).

Why: the join encodes ten examples per closed slate, and building each one's
dictionary (:func:`stream.codec.to_dict`) cost more than serialising it.
The examples of one slate share eight fields (ids, segment, policy,
versions, ``ts``); :class:`ExampleEncoder` writes those once per slate and
splices the per-item values, each serialised by orjson exactly as
:func:`stream.codec.encode` would. The output is byte-for-byte
``encode(example, validate=False)`` (tested), for the examples the join
builds from validated impressions (finite numbers only).

>>> from stream.codec import encode
>>> from stream.events import Example, Labels
>>> ex = Example("r1:t1", "r1", "t1", "s1", "u1", "family", "rules", "m0", "phi-v1", (1.0, 0.5), 0,
...              0.8, 1.0, Labels(click=1), True, True, 1000.0)
>>> ExampleEncoder().encode(ex) == encode(ex, validate=False)
True
"""

from __future__ import annotations

from typing import Final

from orjson import dumps

from stream.events import MAX_SLATE_SIZE, SCHEMA_VERSION, Example, Labels
from stream.session import EmittedSlate

__all__ = ["MAX_RECORD_BYTES", "ExampleEncoder", "pack_examples"]

_HEAD: Final = b'{"v":%d,"kind":"example","example_id":' % SCHEMA_VERSION
_PACK_HEAD: Final = b'{"v":%d,"kind":"examples","examples":[' % SCHEMA_VERSION
#: The largest record :func:`pack_examples` builds: half the decoders' 1 MiB and Kafka's default 1 MB limit.
MAX_RECORD_BYTES: Final = 512 * 1024
_BOOL: Final = (b"false", b"true")


class ExampleEncoder:
    """Encodes examples; consecutive examples of one slate share the cached common part."""

    __slots__ = ("_key", "_labels", "_labels_json", "_shared")

    def __init__(self) -> None:
        self._key: tuple[str, str, str, str, str, str, str, float] | None = None
        self._shared: tuple[bytes, bytes, bytes] = (b"", b"", b"")
        self._labels: Labels | None = None  # the last labels object seen (unlabelled items share one)
        self._labels_json = b""

    def encode(self, ex: Example) -> bytes:
        """``stream.codec.encode(ex, validate=False)``, faster."""
        key = (ex.request_id, ex.session_id, ex.user_id, ex.segment, ex.policy, ex.model_version,
               ex.feature_version, ex.ts)  # fmt: skip
        if key != self._key:
            self._set_shared(key)
        request, shared, ts = self._shared
        labels = self._labels_bytes(ex.labels)
        revision = ex.revision
        return b"".join((
            _HEAD, dumps(ex.example_id), request, dumps(ex.trip_id), shared, dumps(ex.phi),
            b',"position":', b"%d" % ex.position, b',"propensity":', dumps(ex.propensity),
            b',"reward":', dumps(ex.reward), b',"labels":', labels,
            b',"clicked":', _BOOL[ex.clicked], b',"examined":', _BOOL[ex.examined],
            ts, b"%d" % revision, b',"is_correction":', _BOOL[revision > 0],
            b',"randomized":true}' if ex.randomized else b"}",
        ))  # fmt: skip

    def encode_slate(self, emitted: EmittedSlate, limit: int | None = None) -> list[tuple[int, bytes]]:
        """``(index, bytes)`` of each example of ``emitted`` (the first ``limit``): what encoding
        ``emitted.examples()`` gives."""
        p, outcome, revisions = emitted.shown, emitted.outcome, emitted.revisions
        ex_head = (p.request_id, p.session_id, p.user_id, p.segment, p.policy, p.model_version,
                   p.feature_version, p.ts)  # fmt: skip
        if ex_head != self._key:
            self._set_shared(ex_head)
        request, shared, ts = self._shared
        rows, labels, rewards, examined = p.rows(), outcome.labels, outcome.rewards, outcome.examined
        prefix = p.request_id + ":"
        out: list[tuple[int, bytes]] = []
        for k in emitted.indices if limit is None else emitted.indices[:limit]:
            trip, lab, revision = p.trips[k], labels[k], revisions[k]
            out.append((k, b"".join((
                _HEAD, dumps(prefix + trip), request, dumps(trip), shared, dumps(rows[k]),
                b',"position":', b"%d" % p.positions[k], b',"propensity":', dumps(p.propensities[k]),
                b',"reward":', dumps(rewards[k]), b',"labels":', self._labels_bytes(lab),
                b',"clicked":', _BOOL[lab.click > 0], b',"examined":', _BOOL[examined[k]],
                ts, b"%d" % revision, b',"is_correction":', _BOOL[revision > 0],
                b',"randomized":true}' if p.randomized[k] else b"}",
            ))))  # fmt: skip
        return out

    def _set_shared(self, key: tuple[str, str, str, str, str, str, str, float]) -> None:
        request_id, session_id, user_id, segment, policy, model_version, feature_version, ts = key
        self._key = key
        self._shared = (
            b',"request_id":' + dumps(request_id) + b',"trip_id":',
            b',"session_id":' + dumps(session_id) + b',"user_id":' + dumps(user_id)
            + b',"segment":' + dumps(segment) + b',"policy":' + dumps(policy)
            + b',"model_version":' + dumps(model_version)
            + b',"feature_version":' + dumps(feature_version) + b',"phi":',
            b',"ts":' + dumps(ts) + b',"revision":',
        )  # fmt: skip

    def _labels_bytes(self, lab: Labels) -> bytes:
        if lab is self._labels:
            return self._labels_json
        raw = dumps({"click": lab.click, "save": lab.save, "booking_start": lab.booking_start,
                     "contact": lab.contact, "dwell_s": lab.dwell_s})  # fmt: skip
        self._labels, self._labels_json = lab, raw
        return raw


def pack_examples(raws: list[bytes]) -> list[bytes]:
    """Encoded examples ``raws`` in as few records as fit :data:`MAX_RECORD_BYTES` (and the decoders'
    ``MAX_SLATE_SIZE`` items), in order.

    A lone example stays a one-example record.

    >>> pack_examples([b'{"a":1}', b'{"b":2}'])
    [b'{"v":1,"kind":"examples","examples":[{"a":1},{"b":2}]}']
    >>> pack_examples([b'{"a":1}'])
    [b'{"a":1}']
    """
    out: list[bytes] = []
    start, size = 0, len(_PACK_HEAD) + 2
    for i, raw in enumerate(raws):
        if i > start and (size + len(raw) + 1 > MAX_RECORD_BYTES or i - start == MAX_SLATE_SIZE):
            out.append(_pack(raws[start:i]))
            start, size = i, len(_PACK_HEAD) + 2
        size += len(raw) + 1
    if start < len(raws):
        out.append(_pack(raws[start:]))
    return out


def _pack(raws: list[bytes]) -> bytes:
    return raws[0] if len(raws) == 1 else b"".join((_PACK_HEAD, b",".join(raws), b"]}"))
