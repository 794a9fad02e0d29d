"""Bot and abuse rules over one session's impressions and clicks, with expiring state.

Why per session: the join already owns a session (impressions and
interactions are keyed by ``session_id``), so it can judge the whole session
before any of its examples reach the learners. A session that breaks a rule
is *flagged* with that rule's name and stays flagged while its state lives;
:class:`stream.quality_gate.QualityGate` then drops every example of it.

Rules (defaults in :class:`TrafficRules`; event times, seconds):

``fast_clicks``
    more than ``max_fast_clicks`` clicks follow the session's previous click
    by less than ``min_click_gap_s`` (a burst no human produces).
``click_flood``
    one slate gets more than ``max_clicks_per_slate`` distinct clicked trips.
``click_through``
    after at least ``min_slates_for_share`` slates, the share of slates with a
    click reaches ``max_clicked_slate_share`` (a click on nearly every slate).
``long_session``
    the session spans more than ``max_session_s`` of event time.
``many_slates``
    the session has shown more than ``max_slates`` slates.

State expires: a session whose last event time lies more than
``state_ttl_s`` behind its partition's clock is forgotten, verdict included,
so memory is bounded by the sessions active in the last ``state_ttl_s`` of
each partition. The clock is, by default, the largest event time observed in
the partition (the simulator); the join worker passes its partition's
watermark instead (``self_clocked=False`` and :meth:`TrafficFilter.expire`),
so a partition read behind the others keeps its sessions exactly as long as
the join keeps their slates, and one read ahead does not pin them. Expiry
costs O(expired) per call: a heap per partition orders sessions by their
last event time. The TTL must outlast the join's window + lateness so a
verdict lives as long as the session can still emit examples (checked in
:mod:`stream.settings`).
Repeated events (same ``event_id`` / ``request_id``, e.g. redelivered after
a crash) are recognised among the last ones of the session and not counted
twice. The event contract has no bot flag from the frontend, so there is no
rule for one.

>>> from stream.events import Impression, Interaction, SlateItem
>>> f = TrafficFilter(TrafficRules(max_clicks_per_slate=2))
>>> slate = tuple(SlateItem(f"t{i}", i, 0.0, 1.0, ()) for i in range(5))
>>> f.observe_impression(Impression("r1", "s1", "u1", "general", "rules", "m", "v", 100.0, slate))
>>> for i in range(3):
...     f.observe_interaction(Interaction(f"e{i}", "s1", f"t{i}", "click", 101.0 + 2 * i, request_id="r1"))
>>> f.verdict("s1"), f.verdict("s2")
('click_flood', None)
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Final, Literal

from stream.events import Impression, Interaction
from stream.packed_impression import PackedImpression

__all__ = ["RULES", "Rule", "TrafficFilter", "TrafficRules"]

Rule = Literal["fast_clicks", "click_flood", "click_through", "long_session", "many_slates"]
RULES: Final[tuple[Rule, ...]] = (
    "fast_clicks",
    "click_flood",
    "click_through",
    "long_session",
    "many_slates",
)
_RECENT: Final = 32  # ids remembered per session for de-duplication and per-slate click counts


@dataclass(frozen=True, slots=True)
class TrafficRules:
    """Thresholds of the rules (see the module docstring); validated on construction."""

    min_click_gap_s: float = 0.25
    max_fast_clicks: int = 8
    max_clicks_per_slate: int = 8
    max_clicked_slate_share: float = 0.95
    min_slates_for_share: int = 10
    max_session_s: float = 4 * 3600.0
    max_slates: int = 500
    state_ttl_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("min_click_gap_s",):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TrafficRules.{name}: must be >= 0, got {getattr(self, name)!r}")
        for name in ("max_session_s", "state_ttl_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrafficRules.{name}: must be > 0, got {getattr(self, name)!r}")
        for name in ("max_fast_clicks", "max_clicks_per_slate", "min_slates_for_share", "max_slates"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrafficRules.{name}: must be >= 1, got {getattr(self, name)!r}")
        if not 0 < self.max_clicked_slate_share <= 1:
            raise ValueError(
                f"TrafficRules.max_clicked_slate_share: must be in (0, 1], got {self.max_clicked_slate_share!r}"
            )


@dataclass(slots=True)
class _Session:
    first_ts: float
    last_ts: float  # drives expiry: the session goes once its partition's clock passes last_ts + TTL
    partition: int
    last_click_ts: float | None = None
    fast_clicks: int = 0
    slates: int = 0
    clicked_slates: int = 0
    verdict: Rule | None = None
    last_request: str | None = None
    recent_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)
    clicks: OrderedDict[str, set[str]] = field(default_factory=OrderedDict)  # request -> clicked trips


class TrafficFilter:
    """Per-session rule state; :meth:`verdict` says whether (and why) a session is flagged.

    Parameters
    ----------
    rules
        Thresholds; defaults to :class:`TrafficRules`.
    on_flag
        Called once per flagged session with ``(session_id, rule)`` (metrics, logs).
    self_clocked
        Expire on every observed record against the largest event time seen in
        its partition (default); False: only when :meth:`expire` is called with
        the caller's clock (the join worker: its partition's watermark).
    """

    def __init__(
        self,
        rules: TrafficRules | None = None,
        *,
        on_flag: Callable[[str, Rule], None] | None = None,
        self_clocked: bool = True,
    ) -> None:
        self.rules = rules if rules is not None else TrafficRules()
        self.self_clocked = self_clocked
        self._on_flag = on_flag
        self._sessions: dict[str, _Session] = {}
        # partition -> heap of (last_ts, session_id); an entry is stale once its session's last_ts moved on
        self._expiry: dict[int, list[tuple[float, str]]] = {}
        self._clock: dict[int, float] = {}  # partition -> largest event time observed (self-clocked)

    def __len__(self) -> int:
        """Sessions currently remembered."""
        return len(self._sessions)

    def verdict(self, session_id: str) -> Rule | None:
        """The rule the session broke, or None (unknown sessions are not flagged)."""
        s = self._sessions.get(session_id)
        return None if s is None else s.verdict

    def observe_impression(self, imp: Impression | PackedImpression, partition: int = 0) -> None:
        """Count a slate of the session (``partition``: the input partition it was read from).

        Reads the header only (session, request, ts): the join passes its packed impressions as they are.
        """
        s = self._touch(imp.session_id, imp.ts, partition)
        if s is None or self._repeat(s, "r:" + imp.request_id):
            return
        s.slates += 1
        s.last_request = imp.request_id
        s.clicks[imp.request_id] = set()
        while len(s.clicks) > _RECENT:
            s.clicks.popitem(last=False)
        self._judge(imp.session_id, s)

    def observe_interaction(self, ev: Interaction, partition: int = 0) -> None:
        """Count an interaction of the session (clicks only feed the rules)."""
        s = self._touch(ev.session_id, ev.ts, partition)
        if s is None or self._repeat(s, "e:" + ev.event_id) or ev.type != "click":
            return
        if s.last_click_ts is not None and abs(ev.ts - s.last_click_ts) < self.rules.min_click_gap_s:
            s.fast_clicks += 1
        s.last_click_ts = ev.ts
        request = ev.request_id if ev.request_id is not None else s.last_request
        clicked_trips = 0
        if request is not None:
            trips = s.clicks.get(request)
            if trips is None:  # its impression is not here (yet): count it on its own
                trips = s.clicks[request] = set()
            if not trips:
                s.clicked_slates += 1
            trips.add(ev.trip_id)
            clicked_trips = len(trips)
            while len(s.clicks) > _RECENT:
                s.clicks.popitem(last=False)
        self._judge(ev.session_id, s, clicked_trips)

    def expire(self, now: float | None = None, partition: int = 0) -> int:
        """Forget the sessions of ``partition`` whose last event time is more than ``state_ttl_s`` before
        ``now`` (default: the largest event time observed in the partition); returns how many.

        Costs O(log n) per entry popped (sessions expired, or stale entries of sessions seen again).
        """
        clock = self._clock.get(partition, float("-inf")) if now is None else now
        heap = self._expiry.get(partition)
        horizon = clock - self.rules.state_ttl_s
        n = 0
        while heap and heap[0][0] < horizon:
            ts, session_id = heapq.heappop(heap)
            s = self._sessions.get(session_id)
            if s is not None and s.last_ts == ts and s.partition == partition:
                del self._sessions[session_id]
                n += 1
        return n

    def retain(self, partitions: Collection[int]) -> int:
        """Forget the sessions of every partition not in ``partitions`` (revoked); how many."""
        for p in [p for p in self._expiry if p not in partitions]:
            del self._expiry[p]
            self._clock.pop(p, None)
        gone = [sid for sid, s in self._sessions.items() if s.partition not in partitions]
        for sid in gone:
            del self._sessions[sid]
        return len(gone)

    def _touch(self, session_id: str, ts: float, partition: int) -> _Session | None:
        s = self._sessions.get(session_id)
        if s is None:
            s = self._sessions[session_id] = _Session(first_ts=ts, last_ts=ts, partition=partition)
            heapq.heappush(self._expiry.setdefault(partition, []), (ts, session_id))
        else:
            s.first_ts = min(s.first_ts, ts)
            if ts > s.last_ts:
                s.last_ts = ts
                heapq.heappush(self._expiry.setdefault(s.partition, []), (ts, session_id))
        if self.self_clocked:
            clock = self._clock.get(s.partition, float("-inf"))
            if ts > clock:
                self._clock[s.partition] = ts
                self.expire(ts, s.partition)
        return None if s.verdict is not None else s  # a flagged session needs no more counting

    def _repeat(self, s: _Session, key: str) -> bool:
        if key in s.recent_ids:
            return True
        s.recent_ids[key] = None
        if len(s.recent_ids) > _RECENT:
            s.recent_ids.popitem(last=False)
        return False

    def _judge(self, session_id: str, s: _Session, clicked_trips: int = 0) -> None:
        """Flag ``s`` if it breaks a rule (``clicked_trips``: of the slate just clicked)."""
        r = self.rules
        verdict: Rule | None = None
        if s.fast_clicks > r.max_fast_clicks:
            verdict = "fast_clicks"
        elif clicked_trips > r.max_clicks_per_slate:
            verdict = "click_flood"
        elif s.slates >= r.min_slates_for_share and s.clicked_slates >= r.max_clicked_slate_share * s.slates:
            verdict = "click_through"
        elif s.last_ts - s.first_ts > r.max_session_s:
            verdict = "long_session"
        elif s.slates > r.max_slates:
            verdict = "many_slates"
        if verdict is not None:
            s.verdict = verdict
            s.clicks.clear()
            s.recent_ids.clear()
            if self._on_flag is not None:
                self._on_flag(session_id, verdict)
