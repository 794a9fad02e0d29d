"""The columnar replay learns exactly what the careful and fast replays learn, or falls back to them."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import orjson
import pytest

from bandit import LinUCB
from stream._columnar_decode import fast_impression, fast_interaction, slate_of
from stream.codec import decode_impression, decode_interaction, encode
from stream.errors import EventError
from stream.export import LogRecord
from stream.join_runtime import key_partition
from stream.replay import Replayer
from stream.replay_columnar import ColumnarReplayer
from stream.replay_fast import FastReplayer
from stream.settings import StreamSettings
from stream.synthetic import synthetic_sessions
from tests.analysis.replay_data import SETTINGS, session_records

#: Windows that close all through the run (not only at the final flush), short micro-batches.
SHORT = StreamSettings(join_window_s=2.0, watermark_delay_s=0.5, allowed_lateness_s=3.0, join_grace_s=5.0,
                       batch_size=64)  # fmt: skip


def clean_records(n_sessions: int = 400, seed: int = 1, *, sessions: int | None = None) -> list[LogRecord]:
    """Synthetic impressions and clicks in event-time order (with redelivered clicks); with
    ``sessions``, slates are spread over that many sessions (several open slates per session)."""
    recs, _ = synthetic_sessions(n_sessions=n_sessions, seed=seed, t0=1_764_000_000.0, spacing_s=0.02)
    out = []
    for i, r in enumerate(recs):
        value = r.value
        if sessions is not None:
            obj = orjson.loads(value)
            obj["session_id"] = f"s{int(obj['session_id'].split('-')[1]) % sessions}"
            value = orjson.dumps(obj)
        out.append(LogRecord(r.topic, 0, i, 1_764_000_000_000 + 20 * i, r.key, value))
    return out


def assert_same(
    careful: Replayer | ColumnarReplayer, other: Replayer | ColumnarReplayer, *, exact: bool
) -> None:
    """Same models: bit for bit (``exact``), else LinUCB to 1e-9 (rank-one steps vs Woodbury blocks)."""
    a, b = careful.models(), other.models()
    assert a.keys() == b.keys()
    for key, model in a.items():
        got = b[key]
        assert model.n_examples == got.n_examples, key
        if not exact and isinstance(model, LinUCB) and isinstance(got, LinUCB):
            np.testing.assert_allclose(got.A_inv, model.A_inv, rtol=0, atol=1e-9, err_msg=str(key))
            np.testing.assert_allclose(got.theta, model.theta, rtol=0, atol=1e-9, err_msg=str(key))
        else:
            assert model.to_bytes() == got.to_bytes(), key


def _stats(r: Replayer | ColumnarReplayer) -> tuple[object, ...]:
    s = r.stats
    return s.events, s.ignored, s.examples, s.corrections, dict(s.deadletters)


@pytest.mark.parametrize("sessions", [None, 150])
def test_columnar_equals_the_careful_and_fast_paths(sessions: int | None) -> None:
    records = clean_records(sessions=sessions)
    records.insert(100, LogRecord("examples", 0, 10**6, records[100].timestamp_ms, b"x", b"{}"))  # ignored
    careful, fast = Replayer("raw", settings=SHORT), FastReplayer(settings=SHORT)
    columnar = ColumnarReplayer(settings=SHORT)
    careful.run(records), fast.run(records), columnar.run(records)
    assert columnar.fallback is None
    assert _stats(columnar) == _stats(careful) == _stats(fast)
    assert careful.stats.ignored == 1 and careful.stats.examples == 4000
    # The join closed windows in many micro-batches, and dropped redelivered clicks.
    assert careful.join.metrics.registry.get_sample_value(
        "smarttrip_stream_join_events_total", {"kind": "duplicate_interaction"}
    )
    assert_same(fast, columnar, exact=True)  # same compiled loops: any order or batching slip shows
    assert_same(careful, columnar, exact=False)
    reference = ColumnarReplayer(settings=SHORT, compiled=False)  # the reference learners: bit for bit
    reference.run(records)
    assert reference.fallback is None
    assert_same(careful, reference, exact=True)


@pytest.mark.parametrize("sessions", [None, 150])
def test_columnar_equals_the_careful_path_over_partitions_read_unevenly(sessions: int | None) -> None:
    """Four partitions (murmur2 of the session), partition 0 read 300 records late: each partition's
    join closes its own windows (nothing of partition 0 is too late), and the columnar replay
    reproduces the per-partition watermarks and the partition-by-partition close order."""
    records = []
    for r in clean_records(sessions=sessions):
        partition = key_partition(orjson.loads(r.value or b"{}")["session_id"], 4)  # as producers key it
        records.append(LogRecord(r.topic, partition, r.offset, r.timestamp_ms, r.key, r.value))
    records.sort(key=lambda r: r.offset + (300 if r.partition == 0 else 0))  # stable: in order per partition
    assert {r.partition for r in records} == {0, 1, 2, 3}
    careful, fast, columnar = (
        Replayer("raw", settings=SHORT),
        FastReplayer(settings=SHORT),
        ColumnarReplayer(settings=SHORT),
    )
    careful.run(records), fast.run(records), columnar.run(records)
    assert columnar.fallback is None
    assert _stats(columnar) == _stats(careful) == _stats(fast)
    assert careful.stats.examples == 4000 and careful.stats.deadletters == {}
    assert_same(fast, columnar, exact=True)
    assert_same(careful, columnar, exact=False)


def test_columnar_reproduces_drift_responses() -> None:
    """A click rate that jumps half-way: the loss rises, ADWIN detects it and the learners respond, identically."""
    drifting = replace(SHORT, drift_min_examples=100, drift_cooldown=200, traffic_filter=0)
    first, _ = synthetic_sessions(n_sessions=300, seed=2, t0=1_764_000_000.0, spacing_s=0.02, click_p=0.01)
    second, _ = synthetic_sessions(n_sessions=300, seed=3, t0=1_764_000_006.0, spacing_s=0.02, click_p=0.9)
    records = [LogRecord(r.topic, 0, i, 1_764_000_000_000 + 20 * i, r.key, r.value)
               for i, r in enumerate([*first, *second])]  # fmt: skip
    careful, columnar = Replayer("raw", settings=drifting), ColumnarReplayer(settings=drifting)
    careful.run(records), columnar.run(records)
    assert columnar.fallback is None
    responses = [e for e in careful.learner.drift.events if e.response is not None]
    assert responses, "the input must make the learners respond to drift"
    assert [
        (e.policy, e.segment, e.signal, e.seen, e.response) for e in columnar._inner.learner.drift.events
    ] == [(e.policy, e.segment, e.signal, e.seen, e.response) for e in careful.learner.drift.events]
    assert_same(careful, columnar, exact=False)


@pytest.mark.parametrize(
    ("records", "settings", "why"),
    [
        (session_records(200), SETTINGS, "dead-letters"),  # malformed records (and late clicks)
        ([r for r in session_records(200, late_every=3) if r.offset < 10**6], SETTINGS, "correction"),
        (clean_records(200), replace(SHORT, user_cap_examples=5), "quality gate"),
        (clean_records(200, sessions=5), SHORT, "quality gate"),  # click-through and long sessions
    ],
    ids=["dead letters", "late clicks", "user cap", "bot rules"],
)
def test_columnar_falls_back_when_the_join_would_do_more(
    records: list[LogRecord], settings: StreamSettings, why: str
) -> None:
    careful, columnar = Replayer("raw", settings=settings), ColumnarReplayer(settings=settings)
    careful.run(records), columnar.run(records)
    assert columnar.fallback is not None and why in columnar.fallback
    assert _stats(columnar) == _stats(careful)
    assert_same(careful, columnar, exact=False)


def _mutations(value: dict[str, object], rng: random.Random) -> dict[str, object]:
    """One random damage to a record (or to one item of its slate)."""
    obj = orjson.loads(orjson.dumps(value))
    target = obj
    if "slate" in obj and rng.random() < 0.6:
        target = rng.choice(obj["slate"])
    key = rng.choice(sorted(target))
    bad = [
        None,
        "",
        "x" * 129,
        True,
        1,
        -1,
        0,
        1.5,
        1e300,
        2.0,
        10**6,
        [],
        {},
        [1, "a"],
        "click",
        5_000_000_000.0,
    ]
    if key == "phi" and rng.random() < 0.5:
        target[key] = [*target[key][:-1], rng.choice([True, "1", None, 1e308, 3])]
    elif rng.random() < 0.15:
        del target[key]
    else:
        target[key] = rng.choice(bad)
    return obj


def test_fast_decoders_accept_only_what_the_codec_accepts_with_the_same_values() -> None:
    rng = random.Random(0)
    recs, _ = synthetic_sessions(n_sessions=60, seed=4, t0=1_764_000_000.0)
    accepted = rejected = 0
    for r in recs:
        base = orjson.loads(r.value)
        for k in range(40):
            raw = r.value if k == 0 else orjson.dumps(_mutations(base, rng))
            fast = fast_impression(raw) if r.topic == "impressions" else fast_interaction(raw)
            if k == 0:
                assert fast is not None  # valid records take the fast path
            if fast is None:
                rejected += 1
                continue
            accepted += 1
            if r.topic == "impressions":
                assert fast == slate_of(decode_impression(raw))  # the codec accepts, same values
            else:
                assert fast == decode_interaction(raw)
    assert accepted > 300 and rejected > 1000
    with pytest.raises(EventError):  # what the fast path leaves to the codec stays an error there
        decode_impression(encode(decode_impression(recs[0].value)).replace(b'"ts":', b'"ts":-', 1))
