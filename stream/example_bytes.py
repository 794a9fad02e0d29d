"""The ``examples`` records of a closed slate, encoded with the slate's shared fields written once.

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

from stream.events import SCHEMA_VERSION, Example, Labels
from stream.session import EmittedSlate

__all__ = ["ExampleEncoder"]

_HEAD: Final = b'{"v":%d,"kind":"example","example_id":' % SCHEMA_VERSION
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

    def encode_slate(self, emitted: EmittedSlate) -> list[tuple[int, bytes]]:
        """``(index, bytes)`` of each example of ``emitted``: what encoding ``emitted.examples()`` gives."""
        p, outcome, revisions = emitted.shown, emitted.outcome, emitted.revisions
        ex_head = (p.request_id, p.session_id, p.user_id, p.segment, p.policy, p.model_version,
                   p.feature_version, p.ts)  # fmt: skip
        if ex_head != self._key:
            self._set_shared(ex_head)
        request, shared, ts = self._shared
        rows, labels, rewards, examined = p.rows(), outcome.labels, outcome.rewards, outcome.examined
        prefix = p.request_id + ":"
        out: list[tuple[int, bytes]] = []
        for k in emitted.indices:
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
