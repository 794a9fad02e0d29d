"""Seeded input for replay tests: synthetic sessions, reordered so some clicks arrive late."""

from __future__ import annotations

import numpy as np

from stream.export import LogRecord
from stream.settings import StreamSettings
from stream.synthetic import synthetic_sessions

#: Short windows so that the replayed join closes windows, sees late clicks and corrections.
SETTINGS = StreamSettings(join_window_s=2.0, watermark_delay_s=0.5, allowed_lateness_s=30.0, join_grace_s=5.0,
                          batch_size=64)  # fmt: skip


def session_records(n_sessions: int = 600, seed: int = 0, *, late_every: int = 7) -> list[LogRecord]:
    """Impressions and clicks 0.02 s apart; every ``late_every``-th click is delivered ~6 s late
    (after its window closed), plus two malformed records; broker time = delivery order."""
    recs, _ = synthetic_sessions(n_sessions=n_sessions, seed=seed, t0=1_764_000_000.0, spacing_s=0.02)
    order = np.arange(len(recs), dtype=np.float64)
    clicks = [i for i, r in enumerate(recs) if r.topic == "interactions"]
    for j, i in enumerate(clicks):
        if j % late_every == 0:
            order[i] += 300.5  # ~300 records later ≈ 6 s of event time
    delivered = [recs[i] for i in np.argsort(order, kind="stable")]
    out = [
        LogRecord(r.topic, 0, i, 1_764_000_000_000 + 20 * i, r.key, r.value) for i, r in enumerate(delivered)
    ]
    out.insert(50, LogRecord("impressions", 0, 10**6, out[50].timestamp_ms, b"x", b"{not json"))
    out.insert(
        90,
        LogRecord(
            "interactions", 0, 10**6 + 1, out[90].timestamp_ms, b"x", b'{"v": 1, "kind": "interaction"}'
        ),
    )
    return out
