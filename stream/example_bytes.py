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

__all__ = ["ExampleEncoder"]

_HEAD: Final = b'{"v":%d,"kind":"example","example_id":' % SCHEMA_VERSION
_BOOL: Final = (b"false", b"true")


class ExampleEncoder:
    """Encodes examples; consecutive examples of one slate share the cached common part."""

    __slots__ = ("_key", "_labels", "_labels_json", "_shared")

    def __init__(self) -> None:
        self._key: tuple[object, ...] = ()
        self._shared: tuple[bytes, bytes, bytes] = (b"", b"", b"")
        self._labels: Labels | None = None  # the last labels object seen (unlabelled items share one)
        self._labels_json = b""

    def encode(self, ex: Example) -> bytes:
        """``stream.codec.encode(ex, validate=False)``, faster."""
        key = (ex.request_id, ex.session_id, ex.user_id, ex.segment, ex.policy, ex.model_version,
               ex.feature_version, ex.ts)  # fmt: skip
        if key != self._key:
            self._key = key
            self._shared = (
                b',"request_id":' + dumps(ex.request_id) + b',"trip_id":',
                b',"session_id":' + dumps(ex.session_id) + b',"user_id":' + dumps(ex.user_id)
                + b',"segment":' + dumps(ex.segment) + b',"policy":' + dumps(ex.policy)
                + b',"model_version":' + dumps(ex.model_version)
                + b',"feature_version":' + dumps(ex.feature_version) + b',"phi":',
                b',"ts":' + dumps(ex.ts) + b',"revision":',
            )  # fmt: skip
        request, shared, ts = self._shared
        lab = ex.labels
        if lab is self._labels:
            labels = self._labels_json
        else:
            labels = dumps({"click": lab.click, "save": lab.save, "booking_start": lab.booking_start,
                            "contact": lab.contact, "dwell_s": lab.dwell_s})  # fmt: skip
            self._labels, self._labels_json = lab, labels
        revision = ex.revision
        return b"".join((
            _HEAD, dumps(ex.example_id), request, dumps(ex.trip_id), shared, dumps(ex.phi),
            b',"position":', b"%d" % ex.position, b',"propensity":', dumps(ex.propensity),
            b',"reward":', dumps(ex.reward), b',"labels":', labels,
            b',"clicked":', _BOOL[ex.clicked], b',"examined":', _BOOL[ex.examined],
            ts, b"%d" % revision, b',"is_correction":', _BOOL[revision > 0],
            b',"randomized":true}' if ex.randomized else b"}",
        ))  # fmt: skip
