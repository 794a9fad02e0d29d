"""Examples for the analysts' tools, from an export or a topic range, as :class:`BanditLogs`.

When the records include the ``examples`` topic, those are used (the final
revision of each example); otherwise the impressions and interactions are
joined again with the join agent's code (:class:`stream.join_runtime.JoinRuntime`).
Records that fail to decode are counted by reason, never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import orjson

from bandit.ope_inputs import BanditLogs
from monitoring.stream_metrics import StreamMetrics
from stream.codec import decode_examples
from stream.errors import EventError
from stream.events import Example
from stream.export import LogRecord
from stream.join_runtime import JoinRuntime, RawRecord
from stream.settings import StreamSettings

__all__ = ["load_examples", "logs_from_examples"]


def load_examples(
    records: Iterable[LogRecord], settings: StreamSettings | None = None
) -> tuple[list[Example], Counter[str]]:
    """Final examples (highest revision per id, in first-emission order) and dead-letter counts."""
    s = settings or StreamSettings()
    recs = list(records)
    bad: Counter[str] = Counter()
    raw_values: list[bytes]
    if any(r.topic == s.topic_examples for r in recs):
        raw_values = [r.value or b"" for r in recs if r.topic == s.topic_examples]
    else:
        now = {"t": 4_102_444_800.0}
        join = JoinRuntime(s, StreamMetrics(), clock=lambda: now["t"])
        outs = []
        for start in range(0, len(recs), s.batch_size):
            batch = [r for r in recs[start : start + s.batch_size]
                     if r.topic in (s.topic_impressions, s.topic_interactions)]  # fmt: skip
            stamped = [r.timestamp_ms for r in batch if r.timestamp_ms > 0]
            if stamped:
                now["t"] = max(stamped) / 1000.0
            outs += join.process([RawRecord(r.topic, r.partition, r.key, r.value) for r in batch])
        outs += join.flush_all()
        raw_values = [o.value for o in outs if o.topic == s.topic_examples and o.value is not None]
        for o in outs:
            if o.topic == s.topic_deadletter and o.value is not None:
                bad[str(orjson.loads(o.value).get("reason"))] += 1
    final: dict[str, Example] = {}
    for raw in raw_values:
        try:
            decoded = decode_examples(raw)
        except EventError as err:
            bad[err.reason] += 1
            continue
        for ex in decoded:
            old = final.get(ex.example_id)
            if old is None or ex.revision >= old.revision:
                final[ex.example_id] = ex
    return list(final.values()), bad


def logs_from_examples(
    examples: Sequence[Example], *, target: Literal["click", "reward"] = "click"
) -> BanditLogs:
    """One row per example; actions are trip ids (sorted), slates are requests, context is the segment.

    ``target`` is what is evaluated: ``click`` (a CTR) or the graded ``reward``.
    φ rows are kept when every example has one of the same length.
    """
    if not examples:
        raise ValueError("examples: none to evaluate")
    if target not in ("click", "reward"):
        raise ValueError(f"target: must be 'click' or 'reward', got {target!r}")
    widths = {len(e.phi) for e in examples}
    phi = (
        np.array([e.phi for e in examples], dtype=np.float64)
        if len(widths) == 1 and 0 not in widths
        else None
    )
    names = tuple(sorted({e.trip_id for e in examples}))
    index = {t: i for i, t in enumerate(names)}
    segments = tuple(e.segment for e in examples)
    seg_names = sorted(set(segments))
    seg_index = {n: i for i, n in enumerate(seg_names)}
    context = np.zeros((len(examples), len(seg_names)))
    context[np.arange(len(examples)), [seg_index[g] for g in segments]] = 1.0
    requests = {r: i for i, r in enumerate(dict.fromkeys(e.request_id for e in examples))}
    return BanditLogs(
        reward=np.array([e.reward if target == "reward" else float(e.clicked) for e in examples]),
        action=np.array([index[e.trip_id] for e in examples], dtype=np.int64),
        position=np.array([e.position for e in examples], dtype=np.int64),
        pscore=np.array([e.propensity for e in examples], dtype=np.float64),
        context=context,
        slate=np.array([requests[e.request_id] for e in examples], dtype=np.int64),
        action_names=names,
        phi=phi,
        segment=segments,
        variant=tuple(e.policy for e in examples),
    )
