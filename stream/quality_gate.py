"""What the join lets through to the learners: bot rules per session, then a per-user cap.

:class:`QualityGate` sees every decoded impression and interaction before the
join does (:meth:`QualityGate.observe`) and every example the join is about
to emit (:meth:`QualityGate.admit`). An example is dropped when its session
is flagged by :class:`stream.traffic_filter.TrafficFilter` (reason: the
rule's name) or when its user is over :class:`stream.user_cap.UserCap`
(reason ``user_cap``). Flagged sessions never reach the cap, so a bot does
not use up anyone's allowance. Both are counted in the join worker's metrics:
sessions flagged by rule, examples dropped by reason, users capped.

The same object runs in the Faust join worker (:mod:`stream.join_runtime`)
and in the in-process simulator (:mod:`sim.closed_loop`). In the join worker
the session rules' state expires against each partition's watermark
(``watermark_expiry=True``: the runtime calls :meth:`QualityGate.expire`
after every advance), and so do the user cap's counts
(:meth:`QualityGate.expire_cap`); in the simulator, against the largest
event time seen.

>>> from stream.events import Interaction
>>> gate = QualityGate(cap=UserCap(max_examples=1, window_s=60.0))
>>> gate.observe(Interaction("e1", "s1", "t1", "click", 10.0))
>>> gate.admit_parts("s1", "u1", 10.0), gate.admit_parts("s1", "u1", 11.0)
(None, 'user_cap')
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from monitoring.stream_metrics import StreamMetrics
from stream.events import Example, Impression, Interaction
from stream.packed_impression import PackedImpression
from stream.settings import StreamSettings
from stream.traffic_filter import Rule, TrafficFilter, TrafficRules
from stream.user_cap import UserCap

__all__ = ["QualityGate"]

log = logging.getLogger(__name__)


class QualityGate:
    """Session rules and the user cap, with their counters.

    Parameters
    ----------
    rules
        Bot rules; None switches session filtering off.
    cap
        The per-user cap; None switches it off.
    metrics
        The join worker's metrics (None: count nothing, e.g. in the simulator).
    watermark_expiry
        Expire the session rules' state only through :meth:`expire` (the
        join worker's per-partition watermarks) and the cap's only through
        :meth:`expire_cap`, instead of as event time moves on.
    """

    def __init__(
        self,
        *,
        rules: TrafficRules | None = None,
        cap: UserCap | None = None,
        metrics: StreamMetrics | None = None,
        watermark_expiry: bool = False,
    ) -> None:
        self.metrics = metrics
        self.filter = (
            None
            if rules is None
            else TrafficFilter(rules, on_flag=self._flagged, self_clocked=not watermark_expiry)
        )
        self.cap = cap
        if cap is not None:
            cap.on_capped = self._capped
            cap.self_clocked = not watermark_expiry
        self.dropped: dict[str, int] = {}
        self.flagged: dict[str, int] = {}

    @classmethod
    def from_settings(
        cls, settings: StreamSettings, metrics: StreamMetrics | None = None, *, watermark_expiry: bool = False
    ) -> QualityGate:
        """The gate the settings describe (``SMARTTRIP_TRAFFIC_FILTER``, ``SMARTTRIP_BOT_*``, ``SMARTTRIP_USER_CAP_*``)."""
        s = settings
        rules = (
            TrafficRules(
                min_click_gap_s=s.bot_min_click_gap_s,
                max_fast_clicks=s.bot_max_fast_clicks,
                max_clicks_per_slate=s.bot_max_clicks_per_slate,
                max_clicked_slate_share=s.bot_max_clicked_slate_share,
                min_slates_for_share=s.bot_min_slates_for_share,
                max_session_s=s.bot_max_session_s,
                max_slates=s.bot_max_slates,
                state_ttl_s=s.bot_state_ttl_s,
            )
            if s.traffic_filter
            else None
        )
        cap = (
            UserCap(max_examples=s.user_cap_examples, window_s=s.user_cap_window_s)
            if s.user_cap_examples
            else None
        )
        return cls(rules=rules, cap=cap, metrics=metrics, watermark_expiry=watermark_expiry)

    def observe(self, record: Impression | PackedImpression | Interaction, partition: int = 0) -> None:
        """Feed one decoded input record (read from input ``partition``) to the session rules."""
        if self.filter is None:
            return
        if isinstance(record, Interaction):
            self.filter.observe_interaction(record, partition)
        else:  # the rules read an impression's header only: packed or not
            self.filter.observe_impression(record, partition)

    def expire(self, partition: int, watermark: float) -> int:
        """Forget the rule state of ``partition``'s sessions idle for the TTL at ``watermark``; how many."""
        return 0 if self.filter is None else self.filter.expire(watermark, partition)

    def expire_cap(self, partition: int, horizon: float) -> int:
        """Forget the cap's counts of ``partition``'s windows ending by event time ``horizon`` (it can
        emit no example of them any more: its watermark less window and lateness); how many."""
        return 0 if self.cap is None else self.cap.expire(partition, horizon)

    def retain(self, partitions: Collection[int]) -> int:
        """Forget the rules' sessions and the cap's counts of the partitions not in ``partitions``
        (after a rebalance: this state lives in the worker's memory only); how many entries."""
        return (0 if self.filter is None else self.filter.retain(partitions)) + (
            0 if self.cap is None else self.cap.retain(partitions)
        )

    def report(self) -> None:
        """Set the gauges of the entries held (sessions of the rules, users of the cap)."""
        if self.metrics is None:
            return
        if self.filter is not None:
            self.metrics.quality_tracked.labels("sessions").set(len(self.filter))
        if self.cap is not None:
            self.metrics.quality_tracked.labels("users").set(len(self.cap))

    def admit(self, example: Example, partition: int = 0) -> str | None:
        """None if ``example`` (emitted by input ``partition``'s join) may reach the learners, else
        the reason it is dropped (counted)."""
        return self.admit_parts(example.session_id, example.user_id, example.ts, partition)

    def admit_parts(self, session_id: str, user_id: str, ts: float, partition: int = 0) -> str | None:
        """:meth:`admit` from the fields it uses."""
        admitted, reason = self._admit(session_id, user_id, ts, 1, partition)
        return None if admitted else reason

    def admit_slate(self, session_id: str, user_id: str, ts: float, n: int, partition: int = 0) -> int:
        """How many of a closed slate's ``n`` examples, in order, ``n`` calls of :meth:`admit_parts`
        would admit (the first that many), counted as those calls count."""
        return self._admit(session_id, user_id, ts, n, partition)[0]

    def _admit(self, session_id: str, user_id: str, ts: float, n: int, partition: int) -> tuple[int, str]:
        """The first how many of ``n`` examples pass, and the reason the rest are dropped (counted)."""
        reason: str | None = None if self.filter is None else self.filter.verdict(session_id)
        k = 0
        if reason is None:
            k = n if self.cap is None else self.cap.admit_many(user_id, ts, n, partition)
            reason = "user_cap"
        if k < n:
            self.dropped[reason] = self.dropped.get(reason, 0) + n - k
            if self.metrics is not None:
                self.metrics.filtered_examples.labels(reason).inc(n - k)
        return k, reason

    def _flagged(self, session_id: str, rule: Rule) -> None:
        self.flagged[rule] = self.flagged.get(rule, 0) + 1
        if self.metrics is not None:
            self.metrics.filtered_sessions.labels(rule).inc()
        log.info("session %s filtered: %s", session_id, rule)

    def _capped(self, user_id: str) -> None:
        self.flagged["user_cap"] = self.flagged.get("user_cap", 0) + 1
        if self.metrics is not None:
            self.metrics.capped_users.inc()
            if self.cap is not None:
                self.metrics.quality_tracked.labels("users").set(len(self.cap))
        log.info("user %s reached the cap of %d examples per %g s", user_id,
                 self.cap.max_examples if self.cap else 0, self.cap.window_s if self.cap else 0.0)  # fmt: skip
