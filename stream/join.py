"""The session join of one partition: sessions, deadlines and the watermark.

Why a thin driver: the rules live in :mod:`stream.session` as pure functions
over one session; this class only keeps the per-partition bookkeeping around
them — the session store (a dict, or an adapter over a Faust table: every
change is written back with ``store[k] = v`` or ``del store[k]``), a heap of
session deadlines so :meth:`SessionJoin.advance` touches only sessions with
work due, the event-time watermark, and a ``request_id → session_id`` index
that dead-letters ``session_mismatch`` when an interaction or impression
names a request of another session (best effort: only requests still
remembered by this partition are known; the others end up ``orphan``).

The watermark is ``max(ts seen) − watermark_delay_s`` unless the caller
passes one to :meth:`SessionJoin.advance`; it never goes back. Events do not
move it by themselves: call :meth:`SessionJoin.advance` after each event or
batch, and :meth:`SessionJoin.flush` at the end of a replay. Event times come
from the scoring worker's clock; a caller that distrusts them (one far-future
``ts`` would close every window early) passes its own watermark, e.g.
``min(max_ts, wall clock) − delay``.

>>> from stream.events import Impression, Interaction, SlateItem
>>> join = SessionJoin()
>>> imp = Impression("r1", "s1", "u1", "family", "rules", "m0", "phi-v1", 1000.0,
...                  (SlateItem("t1", 0, 2.0, 1.0, (1.0,)), SlateItem("t2", 1, 1.0, 1.0, (0.0,))))
>>> _ = join.on_impression(imp)
>>> _ = join.on_interaction(Interaction("e1", "s1", "t2", "click", 1010.0, request_id="r1"))
>>> [(o.example.trip_id, o.example.clicked, o.example.examined)
...  for o in join.flush() if isinstance(o, Emitted)]
[('t1', False, True), ('t2', True, True)]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import MutableMapping

from stream.events import Impression, Interaction
from stream.packed_impression import PackedImpression
from stream.session import (
    Counted,
    DeadLettered,
    Emitted,
    JoinConfig,
    Outcome,
    SessionState,
    SlateState,
    apply_impression,
    apply_interaction,
    apply_watermark,
    join_dead_letter,
)

__all__ = ["Counted", "DeadLettered", "Emitted", "JoinConfig", "Outcome", "SessionJoin", "SessionState"]


class SessionJoin:
    """Join impressions and interactions of the sessions of one partition.

    Parameters
    ----------
    config
        Windows, grace, lateness, bounds and reward; defaults to :class:`JoinConfig`.
    store
        Where session states live; a plain ``dict`` by default. Existing
        entries (e.g. a table restored from its changelog) are indexed.
    """

    def __init__(
        self, *, config: JoinConfig | None = None, store: MutableMapping[str, SessionState] | None = None
    ) -> None:
        self.config = config if config is not None else JoinConfig()
        self._store: MutableMapping[str, SessionState] = {} if store is None else store
        self._heap: list[tuple[float, str]] = []
        self._deadline: dict[str, float] = {}
        self._owner: dict[str, str] = {}
        self._max_ts = -math.inf
        self._watermark = -math.inf
        for session_id, state in list(self._store.items()):
            self._index(session_id, None, state)
            ts = [s.shown.ts for s in state.slates] + [ev.ts for ev in state.held]
            ts += [ev.ts for s in state.slates for ev in s.attached]
            self._max_ts = max([self._max_ts, *ts])

    @property
    def watermark(self) -> float:
        """Event time up to which windows have been closed (``-inf`` before the first advance)."""
        return self._watermark

    @property
    def max_ts(self) -> float:
        """Largest event time seen."""
        return self._max_ts

    def __len__(self) -> int:
        """Number of live sessions."""
        return len(self._store)

    def state(self, session_id: str) -> SessionState | None:
        """The state of a live session, if any."""
        return self._store.get(session_id)

    def on_impression(self, imp: Impression | PackedImpression) -> list[Outcome]:
        """Add a slate; returns duplicates, dead letters and early closes."""
        self._max_ts = max(self._max_ts, imp.ts)
        owner = self._owner.get(imp.request_id)
        if owner is not None and owner != imp.session_id:
            return [self._mismatch(imp.impression() if isinstance(imp, PackedImpression) else imp, owner)]
        old = self._store.get(imp.session_id)
        if old is None and owner is None and type(imp) is PackedImpression:
            return self._new_session(imp)
        new, out = apply_impression(old, imp, watermark=self._watermark, config=self.config)
        self._save(imp.session_id, old, new)
        return out

    def _new_session(self, imp: PackedImpression) -> list[Outcome]:
        """:func:`apply_impression` then :meth:`_save` for the first slate of a session, inline.

        Most impressions open a session: this skips the general path's
        intermediate states and request-id sets (same state, index,
        deadline and outcomes, tested).
        """
        config, session_id = self.config, imp.session_id
        if imp.ts + config.window_s + config.allowed_lateness_s < self._watermark:  # too late: dead letter
            return apply_impression(None, imp, watermark=self._watermark, config=config)[1]
        self._store[session_id] = SessionState(session_id, (SlateState(imp),))
        self._owner[imp.request_id] = session_id
        deadline = imp.ts + config.window_s  # next_deadline of one open slate
        if self._deadline.get(session_id) != deadline:
            self._deadline[session_id] = deadline
            heapq.heappush(self._heap, (deadline, session_id))
        return []

    def on_interaction(self, ev: Interaction) -> list[Outcome]:
        """Join, hold or dead-letter an interaction; late joins return corrections."""
        self._max_ts = max(self._max_ts, ev.ts)
        owner = None if ev.request_id is None else self._owner.get(ev.request_id)
        if owner is not None and owner != ev.session_id:
            return [self._mismatch(ev, owner)]
        old = self._store.get(ev.session_id)
        new, out = apply_interaction(old, ev, watermark=self._watermark, config=self.config)
        self._save(ev.session_id, old, new)
        return out

    def advance(self, watermark_ts: float | None = None) -> list[Outcome]:
        """Move the watermark (default: max ts seen − delay) and run what is due.

        Outcomes come in deadline order, then by session id.
        """
        target = self._max_ts - self.config.watermark_delay_s if watermark_ts is None else watermark_ts
        self._watermark = max(self._watermark, target)
        out: list[Outcome] = []
        while self._heap and self._heap[0][0] < self._watermark:
            deadline, session_id = heapq.heappop(self._heap)
            if self._deadline.get(session_id) != deadline:
                continue  # stale entry: the session's deadline moved since
            del self._deadline[session_id]
            old = self._store[session_id]
            new, more = apply_watermark(old, watermark=self._watermark, config=self.config)
            out += more
            self._save(session_id, old, new)
        return out

    def flush(self) -> list[Outcome]:
        """End of input: close every window and expire everything (watermark = +inf)."""
        return self.advance(math.inf)

    def _mismatch(self, record: Impression | Interaction, owner: str) -> DeadLettered:
        topic = (
            self.config.impressions_topic
            if isinstance(record, Impression)
            else self.config.interactions_topic
        )
        detail = f"request {record.request_id!r} belongs to session {owner!r}, not {record.session_id!r}"
        return join_dead_letter(record, "session_mismatch", detail, topic)

    def _save(self, session_id: str, old: SessionState | None, new: SessionState | None) -> None:
        if new is old:
            return
        if new is None:
            self._store.pop(session_id, None)
        else:
            self._store[session_id] = new
        self._index(session_id, old, new)

    def _index(self, session_id: str, old: SessionState | None, new: SessionState | None) -> None:
        if old is None or new is None or not _same_slates(old, new):
            before = old.request_ids() if old is not None else frozenset()
            after = new.request_ids() if new is not None else frozenset()
            for request_id in before - after:
                self._owner.pop(request_id, None)
            for request_id in after - before:
                self._owner[request_id] = session_id
        deadline = None if new is None else new.next_deadline(self.config)
        if deadline is None:
            self._deadline.pop(session_id, None)
        elif self._deadline.get(session_id) != deadline:
            self._deadline[session_id] = deadline
            heapq.heappush(self._heap, (deadline, session_id))


def _same_slates(old: SessionState, new: SessionState) -> bool:
    """Whether both states remember the same slates (so the same request ids)."""
    a, b = old.slates, new.slates
    return a is b or (len(a) == len(b) and all(x.shown is y.shown for x, y in zip(a, b, strict=True)))
