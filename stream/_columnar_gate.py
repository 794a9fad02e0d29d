"""Whether the join's quality gate would let every example of an input through (columnar replay).

:class:`stream.quality_gate.QualityGate` judges sessions record by record
(:mod:`stream.traffic_filter`) and caps examples per user
(:mod:`stream.user_cap`). The columnar replay skips both only when this
conservative test proves that neither could drop anything; otherwise the
replay falls back to the record-by-record join, which runs the gate itself.

Sufficient conditions, per session, over its records in arrival order
(counts only grow while a session's rule state lives, and a state that
expires restarts from zero — so the session must not expire between two of
its records: the filter's clock, its partition's watermark (bounded here by
the largest event time seen and the largest watermark of the batches
before), may not get more than ``state_ttl_s`` past the session's last event
time):

- fast clicks (gap below ``min_click_gap_s``) never exceed ``max_fast_clicks``;
- all clicks of the session (an upper bound of any slate's clicked trips and
  of its clicked slates) stay within ``max_clicks_per_slate``, and below
  ``max_clicked_slate_share`` × slates once there are ``min_slates_for_share``;
- the session spans at most ``max_session_s`` and shows at most ``max_slates``;

and per user, all examples of the input fit within ``user_cap_examples``.

>>> from stream.events import Interaction
>>> from stream.settings import StreamSettings
>>> clicks = [(0, Interaction(f"e{i}", "s1", "t1", "click", 100.0 + i * 0.1)) for i in range(10)]
>>> gate_admits_all(clicks[:3], StreamSettings()), gate_admits_all(clicks, StreamSettings())
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from stream._columnar_decode import Slate
from stream.events import Interaction
from stream.settings import StreamSettings

__all__ = ["gate_admits_all"]


@dataclass(slots=True)
class _Seen:
    first_ts: float
    last_ts: float
    slates: int = 0
    clicks: int = 0
    fast: int = 0
    last_click: float | None = None


def gate_admits_all(
    arrivals: Sequence[tuple[int, Slate | Interaction]], s: StreamSettings, highest: Sequence[float] = ()
) -> bool:
    """True when the gate of :class:`~stream.join_runtime.JoinRuntime` (``s``) drops no example of ``arrivals``.

    ``highest``: the largest partition watermark after each batch's advance (the rule state expires
    against its partition's watermark); records of batch ``b`` see expiries up to ``highest[b - 1]``.
    """
    if s.traffic_filter and not _no_session_flagged(arrivals, s, highest):
        return False
    if s.user_cap_examples:
        per_user: dict[str, int] = {}
        for _, rec in arrivals:
            if isinstance(rec, Slate):
                per_user[rec.user_id] = per_user.get(rec.user_id, 0) + len(rec.trips)
        if per_user and max(per_user.values()) > s.user_cap_examples:
            return False
    return True


def _no_session_flagged(
    arrivals: Sequence[tuple[int, Slate | Interaction]], s: StreamSettings, highest: Sequence[float]
) -> bool:
    clock = -math.inf  # an upper bound of every partition's expiry clock so far
    sessions: dict[str, _Seen] = {}
    for b, rec in arrivals:
        ts = rec.ts
        clock = max(clock, ts, highest[b - 1] if 0 < b <= len(highest) else -math.inf)
        seen = sessions.get(rec.session_id)
        if seen is None:
            seen = sessions[rec.session_id] = _Seen(ts, ts)
        elif clock - seen.last_ts > s.bot_state_ttl_s:
            return False  # its rule state could have expired in between
        seen.first_ts, seen.last_ts = min(seen.first_ts, ts), max(seen.last_ts, ts)
        if isinstance(rec, Slate):
            seen.slates += 1
        elif rec.type == "click":
            if seen.last_click is not None and abs(ts - seen.last_click) < s.bot_min_click_gap_s:
                seen.fast += 1
            seen.last_click = ts
            seen.clicks += 1
        if (
            seen.fast > s.bot_max_fast_clicks
            or seen.clicks > s.bot_max_clicks_per_slate
            or (
                seen.slates >= s.bot_min_slates_for_share
                and seen.clicks >= s.bot_max_clicked_slate_share * seen.slates
            )
            or seen.last_ts - seen.first_ts > s.bot_max_session_s
            or seen.slates > s.bot_max_slates
        ):
            return False
    return True
