"""A columnar ``raw`` replay: the join's outcome computed per slate, the learners fed arrays.

Why: :class:`stream.replay_fast.FastReplayer` still runs the join agent's
code record by record — immutable session states, a heap, one
:class:`~stream.events.Example` object per shown trip — which caps a replay
at a few thousand input events per second whatever the learners cost. On
clean input the join's outcome is simple enough to compute directly:

1. decode every record with the codec (the same validation as the join);
2. replay the watermark per micro-batch exactly as
   :class:`~stream.replay.Replayer` drives :class:`~stream.join_runtime.JoinRuntime`
   (broker-time clock, one watermark per input partition from its per-topic
   event clocks, idleness, delay);
3. attribute each interaction to its slate by the rules of
   :mod:`stream.session`, and find the micro-batch whose watermark closes
   each slate; order the closes of one batch as the joins' heaps do (by
   partition, then the session's deadline, then session id; a session's due
   slates in arrival order);
4. build the examples' arrays (φ, reward, position, propensity, randomized,
   clicked) for all slates at once, and learn each batch's examples, per
   segment, through the learner runtime's own models and drift monitor (see
   :mod:`stream._columnar_learn`) — the calls the learner agent makes.

Only when that is provably what the join would do. :func:`_check` and
:func:`stream._columnar_gate.gate_admits_all` look for anything that would
make the join or the quality gate do more — a record that fails to decode,
a duplicate, an interaction held, dead-lettered or arriving after its window
closed (a correction), a forced close, a late impression, a φ of the wrong
width, a session the bot rules could flag, a user the cap could reach — and
if they find one the whole input goes through :class:`FastReplayer`
instead (:attr:`ColumnarReplayer.fallback` says why). Dead letters therefore
only ever come from the fallback. ``tests/analysis/test_replay_columnar.py``
checks both paths against the careful one.
"""

from __future__ import annotations

import bisect
import gc
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from bandit.protocol import Learner
from features.phi import D
from stream._columnar_decode import Slate, fast_impression, fast_interaction, slate_of
from stream._columnar_gate import gate_admits_all
from stream._columnar_learn import learn_arrays
from stream.codec import decode_impression, decode_interaction
from stream.events import Interaction, Labels
from stream.export import LogRecord
from stream.join import JoinConfig
from stream.replay import ReplayStats
from stream.replay_fast import FastReplayer
from stream.settings import StreamSettings

__all__ = ["ColumnarReplayer", "Fallback"]

_NO_CLOCK = 4_102_444_800.0  # as stream.replay: records without broker time
_MAX_OPEN = JoinConfig().max_open_slates  # the join runtime's (JoinConfig's defaults)
_MAX_SEEN = JoinConfig().max_seen_event_ids


class Fallback(Exception):
    """The input needs the record-by-record join (the message says why)."""


@dataclass(slots=True)
class _Slate:
    imp: Slate
    batch: int  # index of its micro-batch among the batches that advanced the watermark
    end: float
    trips: dict[str, int]
    first_item: int  # row of its first item in the item arrays
    close: int = -1  # batch whose advance closes it (the number of batches: the final flush)
    forget: int = -1  # batch whose advance forgets it


class ColumnarReplayer:
    """Replay a whole input at once; equal to :class:`~stream.replay.Replayer` ``("raw")``.

    Parameters are those of :class:`~stream.replay_fast.FastReplayer`; models
    are in :meth:`models` after :meth:`run`, as there.
    """

    def __init__(
        self,
        *,
        settings: StreamSettings | None = None,
        policies: Mapping[str, Callable[[], Learner]] | None = None,
        batch_size: int | None = None,
        compiled: bool = True,
    ) -> None:
        self.settings = settings or StreamSettings()
        self.batch_size = batch_size or self.settings.batch_size
        self.policies = policies
        self.compiled = compiled
        self.fallback: str | None = None
        self._inner = FastReplayer(settings=self.settings, policies=policies, batch_size=batch_size,
                                   compiled=compiled)  # fmt: skip
        self.stats = self._inner.stats

    @property
    def learner(self) -> object:
        return self._inner.learner

    def models(self) -> dict[tuple[str, str], Learner]:
        """The learned model of every (policy, segment) seen."""
        return self._inner.models()

    def run(self, records: Iterable[LogRecord], progress: Callable[[int], None] | None = None) -> ReplayStats:
        """Replay every record (columnar when the input allows it, else record by record)."""
        recs = list(records)
        started = time.perf_counter()
        collecting = gc.isenabled()
        gc.disable()  # ~10⁶ small objects while parsing: generational passes would rescan them all
        try:
            self._columnar(recs)  # raises Fallback before anything is learned
            why = None
        except Fallback as exc:
            why = str(exc)
        finally:
            if collecting:
                gc.enable()
        if why is not None:
            self.fallback = why
            self._inner = FastReplayer(settings=self.settings, policies=self.policies, batch_size=self.batch_size,
                                       compiled=self.compiled)  # fmt: skip
            self.stats = self._inner.run(recs, progress)
            self.stats.seconds = time.perf_counter() - started
            return self.stats
        if progress is not None:
            progress(len(recs))
        self.stats.seconds = time.perf_counter() - started
        return self.stats

    # -- the join, per slate
    def _columnar(self, recs: Sequence[LogRecord]) -> None:
        s = self.settings
        delay, lateness = s.watermark_delay_s, s.allowed_lateness_s
        arrivals: list[tuple[int, Slate | Interaction]] = []  # (batch, record) in input order
        # The join runtime's per-partition joins: each partition's clocks (topic -> (max ts, wall
        # seen)) and its watermark after each batch's advance (-inf before its join existed).
        clocks: dict[int, dict[str, tuple[float, float]]] = {}
        marks: dict[int, list[float]] = {}
        part_of: dict[str, int] = {}  # session -> partition (co-partitioned: one each)
        n_batches, now, events, ignored = 0, _NO_CLOCK, 0, 0
        for start in range(0, len(recs), self.batch_size):
            used = [
                r
                for r in recs[start : start + self.batch_size]
                if r.topic in (s.topic_impressions, s.topic_interactions)
            ]
            ignored += min(self.batch_size, len(recs) - start) - len(used)
            if not used:
                continue
            events += len(used)
            stamped = [r.timestamp_ms for r in used if r.timestamp_ms > 0]
            if stamped:
                now = max(stamped) / 1000.0
            b = n_batches
            for r in used:
                if r.value is None:
                    raise Fallback("a tombstone record")
                try:
                    rec: Slate | Interaction
                    if r.topic == s.topic_impressions:
                        rec = fast_impression(r.value) or slate_of(decode_impression(r.value))
                    else:
                        rec = fast_interaction(r.value) or decode_interaction(r.value)
                except Exception as exc:  # EventError, or anything the join would dead-letter
                    raise Fallback(f"a record the join dead-letters ({type(exc).__name__})") from None
                if part_of.setdefault(rec.session_id, r.partition) != r.partition:
                    raise Fallback(f"session {rec.session_id!r} read from two partitions")
                arrivals.append((b, rec))
                mine = clocks.setdefault(r.partition, {})
                seen = mine.get(r.topic)
                mine[r.topic] = (rec.ts if seen is None else max(seen[0], rec.ts), now)
                marks.setdefault(r.partition, [-math.inf] * b)
            for p, mine in clocks.items():  # JoinRuntime._watermark, without a consumer (nothing backlogged)
                active = [t for t, wall in mine.values() if now - wall <= s.idle_s]
                if active:
                    base = min(active)
                else:  # the partition's input is idle: its event time follows the wall clock
                    base = max(t for t, _ in mine.values()) + (now - max(w for _, w in mine.values()))
                done = marks[p]
                done.append(max(done[-1], min(base, now) - delay) if done else min(base, now) - delay)
            n_batches += 1
        self.stats.events, self.stats.ignored = events, ignored
        if not arrivals:
            return
        slates, attached = _check(arrivals, marks, part_of, s)
        highest = [max(m[b] for m in marks.values()) for b in range(n_batches)]
        if not gate_admits_all(arrivals, s, highest):
            raise Fallback("the quality gate could drop examples (bot rules or the user cap)")
        for sl in slates:  # first advance whose watermark (its partition's) passes the end (or the flush)
            done = marks[part_of[sl.imp.session_id]]
            sl.close = max(sl.batch, bisect.bisect_right(done, sl.end))
            gone = bisect.bisect_right(done, sl.end + lateness)
            sl.forget = max(sl.close, gone)
        order = _emission_order(slates, n_batches, lateness, part_of)
        self._learn(slates, attached, order)

    def _learn(
        self, slates: list[_Slate], attached: list[tuple[int, Interaction]], order: list[list[int]]
    ) -> None:
        if any(len(sl.imp.phi[0]) != D for sl in slates):  # one width per slate (decoders check it)
            raise Fallback(f"a phi row without {D} values")
        n = sum(len(sl.imp.trips) for sl in slates)
        flat = chain.from_iterable(chain.from_iterable(sl.imp.phi for sl in slates))
        try:
            X = np.fromiter(flat, np.float64, n * D).reshape(n, D)
        except (OverflowError, ValueError, TypeError):  # a huge integer: the codec decides, record by record
            raise Fallback("a phi value out of float range") from None
        if not np.isfinite(X).all():
            raise Fallback("a phi value that is not finite")
        positions = np.fromiter(chain.from_iterable(sl.imp.positions for sl in slates), np.int64, n)
        propensities = np.fromiter(chain.from_iterable(sl.imp.propensities for sl in slates), np.float64, n)
        randomized = np.fromiter(chain.from_iterable(sl.imp.randomized for sl in slates), np.bool_, n)
        rewards, clicked = _rewards(attached, n, self.settings)
        meta = [(sl.imp.segment, sl.imp.policy, sl.first_item, len(sl.imp.trips)) for sl in slates]
        self._fit(meta, order, X=X, rewards=rewards, clicked=clicked, positions=positions,
                  propensities=propensities, randomized=randomized)  # fmt: skip

    def _fit(self, meta: list[tuple[str, str, int, int]], order: list[list[int]], **arrays: Any) -> None:
        """Learn the examples (a subclass may only count them: the join-only benchmark)."""
        learn_arrays(self._inner.learner, self.stats, slates=meta, batches=order, **arrays)


def _check(
    arrivals: list[tuple[int, Slate | Interaction]],
    marks: dict[int, list[float]],
    part_of: dict[str, int],
    s: StreamSettings,
) -> tuple[list[_Slate], list[tuple[int, Interaction]]]:
    """Slates and (item row, interaction) attachments, or :class:`Fallback` if the join would do more.

    ``marks``: each partition's watermark after each batch; ``part_of``: each session's partition.
    """
    window, lateness = s.join_window_s, s.allowed_lateness_s
    slates: list[_Slate] = []
    by_request: dict[str, int] = {}
    by_session: dict[str, list[int]] = {}
    # watermark in force while batch b's records of partition p are joined: befores[p][b]
    befores = {p: [-math.inf, *done] for p, done in marks.items()}
    rows = 0
    attached: list[tuple[int, Interaction]] = []
    joined: dict[tuple[str, str], int] = {}  # (session, event id) -> the slate it joined
    fresh: dict[str, int] = {}  # interactions of each session, repeats excluded
    for b, rec in arrivals:
        before = befores[part_of[rec.session_id]]
        if isinstance(rec, Slate):
            rid = rec.request_id
            if rid in by_request:
                raise Fallback(f"duplicate request_id {rid!r}")
            if ":" in rid:
                raise Fallback("a request_id with ':' (example ids could collide)")
            end = rec.ts + window
            if end + lateness < before[b]:
                raise Fallback(f"impression {rid!r} too late")
            mine = by_session.setdefault(rec.session_id, [])
            if len(mine) >= _MAX_OPEN:
                raise Fallback(f"session {rec.session_id!r}: too many slates (forced closes)")
            by_request[rid] = len(slates)
            mine.append(len(slates))
            slates.append(_Slate(rec, b, end, {trip: k for k, trip in enumerate(rec.trips)}, rows))
            rows += len(rec.trips)
            continue
        ev = rec
        first = joined.get((ev.session_id, ev.event_id))
        if first is not None:  # a redelivery: the join drops it while the session remembers the id
            n_fresh = fresh.get(ev.session_id, 0)
            if before[b] <= slates[first].end + lateness and n_fresh < _MAX_SEEN:
                continue
            raise Fallback(f"interaction {ev.event_id!r} repeated after its session may have forgotten it")
        target: int | None = None
        if ev.request_id is not None:
            target = by_request.get(ev.request_id)
            if target is None or slates[target].imp.session_id != ev.session_id:
                raise Fallback(f"interaction {ev.event_id!r}: its slate is not (yet) in its session")
            sl = slates[target]
            if ev.trip_id not in sl.trips or ev.ts > sl.end:
                raise Fallback(f"interaction {ev.event_id!r}: not in its slate's window")
        else:
            for i in by_session.get(ev.session_id, ()):
                sl = slates[i]
                in_window = ev.trip_id in sl.trips and sl.imp.ts <= ev.ts <= sl.end
                if in_window and (target is None or sl.imp.ts >= slates[target].imp.ts):
                    target = i
            if target is None:
                raise Fallback(f"interaction {ev.event_id!r} would wait for its impression")
        sl = slates[target]
        if before[b] > sl.end:
            raise Fallback(f"interaction {ev.event_id!r} after its window closed (a correction)")
        attached.append((sl.first_item + sl.trips[ev.trip_id], ev))
        joined[(ev.session_id, ev.event_id)] = target
        fresh[ev.session_id] = fresh.get(ev.session_id, 0) + 1
    return slates, attached


def _emission_order(
    slates: list[_Slate], n_batches: int, lateness: float, part_of: dict[str, int]
) -> list[list[int]]:
    """Slates closed by each advance (the last: the final flush), in the order the join emits them.

    The runtime advances its partitions' joins in partition order; each pops
    its sessions from a heap by (deadline, session id), the deadline
    being the session's earliest pending time (an open slate's end, a closed
    one's end + lateness) when the advance starts; a popped session closes
    all its due slates in arrival order.
    """
    by_session: dict[str, list[int]] = {}
    for i, sl in enumerate(slates):
        by_session.setdefault(sl.imp.session_id, []).append(i)
    keyed: list[tuple[int, int, float, str, list[int]]] = []
    for session_id, mine in by_session.items():
        for p in sorted({slates[i].close for i in mine}):
            deadline = min(
                sl.end if sl.close >= p else sl.end + lateness
                for sl in (slates[i] for i in mine)
                if sl.batch <= p and sl.forget >= p
            )
            closing = [i for i in mine if slates[i].close == p]
            keyed.append((p, part_of[session_id], deadline, session_id, closing))
    keyed.sort(key=lambda k: (k[0], k[1], k[2], k[3]))
    out: list[list[int]] = [[] for _ in range(n_batches + 1)]
    for p, _, _, _, closing in keyed:
        out[p] += closing
    return [batch for batch in out if batch]


def _rewards(
    attached: list[tuple[int, Interaction]], n: int, s: StreamSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Reward and clicked flag per item, as :func:`stream.labeling.examples_of` labels them."""
    cfg = JoinConfig().reward  # the join runtime's reward (JoinConfig's default)
    counts: dict[int, list[float]] = {}  # row -> [click, save, contact, booking_start, dwell]
    slot = {"click": 0, "save": 1, "contact": 2, "booking_start": 3}
    for row, ev in attached:
        c = counts.setdefault(row, [0.0, 0.0, 0.0, 0.0, 0.0])
        if ev.type == "dwell":
            c[4] += ev.value
        else:
            c[slot[ev.type]] += 1
    rewards = np.zeros(n)
    clicked = np.zeros(n, dtype=np.bool_)
    for row, c in counts.items():
        labels = Labels(int(c[0]), int(c[1]), int(c[3]), int(c[2]), c[4])
        rewards[row] = cfg.reward(labels)
        clicked[row] = labels.click > 0
    return rewards, clicked
