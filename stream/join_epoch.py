"""The join worker's input logs: notice a new log of impressions or interactions and read it from its start.

A broker that loses its log (the embedded Tansu broker keeps it in memory)
comes back with the topics recreated, empty, at offset 0. A join worker that
kept its positions from the old log would fetch the new log from there and
never see its first records — and Faust would commit those old positions into
the new broker's consumer group, so a restarted worker would skip them too.
The learner solves this for its input (:mod:`stream.learner_app`); this
module does the same for the join's two input topics, with the topic id as
the log's name (:class:`stream.log_epoch.LogEpochs`):

- **when it checks**: at start-up, in-line at every partition assignment
  (blocking, so the fetcher never runs on a half-made assignment), every
  second, and — the case a frozen or partitioned worker needs — before it
  processes a batch or commits offsets whenever the last confirmation is more
  than ``max_age_s`` old or a check failed since (the broker was away: the
  records at hand may come from a new log fetched at old positions);
- **what a new log does**, per owned partition of that topic: Faust's offset
  bookkeeping of the old log is forgotten (``_acked``, ``_acked_index``,
  ``_gap``, ``_committed_offset``: acknowledged old offsets would otherwise be
  committed into the new group, and the old committed offset would make
  Faust ignore acknowledgements below it), the partition is sought to 0 (which
  also clears ``_read_offset``, so Faust does not drop the re-read records as
  already seen), and records are then admitted contiguously from 0: records
  fetched from further on (before the seek, or after Faust's own seek to a
  committed offset written in the new group from old positions) are not
  processed, never acknowledged, and the partition is sought back to the next
  expected offset. The expectation holds across a rebalance that gives the
  partition back: Faust drops records fetched during a rebalance and relies
  on its seek to the committed offset to read them again, and a new log has
  nothing committed yet, so a partition whose fetch position passed the
  expected offset without records reaching the agent is sought back
  (:class:`stream.delivery_watch.DeliveryWatch`, which keeps watching the
  partition after the gate released it). Commits of such a partition never
  pass the last record processed in the new log;
- **session state of the old log**: kept. The sessions this worker holds were
  joined from records that are gone with the old log; their windows close as
  usual and their examples are emitted (dropping them would lose clicks
  already joined). Their changelog went with the broker too, so they are
  only in this worker's memory: a crash before their windows close loses
  them (their input is gone; nothing can rebuild them).

Faust internals used (faust-streaming 0.15): the consumer's ``_acked``,
``_acked_index``, ``_gap``, ``_committed_offset``, ``_read_offset``,
``_unacked_messages``, ``_commit_offsets`` and ``faust.types.tuples.ack_lock``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
from faust.types import TP
from faust.types.tuples import ack_lock

from stream.delivery_watch import DeliveryWatch
from stream.log_epoch import LogEpochs

__all__ = ["JoinLogEpochs", "OffsetGate"]

log = logging.getLogger(__name__)


class OffsetGate:
    """Per (topic, partition): the next offset expected after a seek to a new log's start.

    Records at or below the expected offset are admitted (a record at it moves
    the expectation on); a record beyond it is refused and a seek back asked
    for, at most every ``retry_s``. If the expected records never come for
    ``give_up_s`` while later ones do (deleted by retention), the gap is
    accepted and logged. Commits are capped at one past the highest offset
    admitted since the reset.

    >>> g = OffsetGate(clock=lambda: 0.0)
    >>> g.reset(("t", 0))
    >>> [g.admit(("t", 0), o) for o in (5, 6)]  # fetched from old positions: refused
    [False, False]
    >>> g.take_seeks()
    {('t', 0): 0}
    >>> [g.admit(("t", 0), o) for o in (0, 1, 2)]
    [True, True, True]
    >>> g.may_commit(("t", 0), 3), g.may_commit(("t", 0), 7)
    (True, False)
    """

    def __init__(
        self,
        *,
        retry_s: float = 0.5,
        give_up_s: float = 30.0,
        quiet_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_s = retry_s
        self.give_up_s = give_up_s
        self.quiet_s = quiet_s
        self._clock = clock
        self._next: dict[Any, int] = {}
        self._admitted: dict[Any, int] = {}  # highest offset admitted since the reset (-1: none)
        self._asked: dict[Any, float] = {}
        self._waiting_since: dict[Any, float] = {}
        self._seeks: dict[Any, int] = {}
        self._refused_at: dict[Any, float] = {}
        self._committed: dict[Any, int] = {}  # last commit that went through since the reset
        self.refused = 0
        self.gaps_accepted = 0

    def __bool__(self) -> bool:
        return bool(self._admitted)

    def reset(self, tp: Any) -> None:
        """``tp`` was sought to a new log's start: expect offset 0 next."""
        self._next[tp] = 0
        self._admitted[tp] = -1
        for d in (self._asked, self._waiting_since, self._seeks, self._refused_at, self._committed):
            d.pop(tp, None)

    def forget(self, tp: Any) -> None:
        """``tp`` is no longer ours (revoked)."""
        for d in (
            self._next,
            self._admitted,
            self._asked,
            self._waiting_since,
            self._seeks,
            self._refused_at,
        ):
            d.pop(tp, None)

    def expected(self) -> dict[Any, int]:
        return dict(self._next)

    def admit(self, tp: Any, offset: int) -> bool:
        nxt = self._next.get(tp)
        if nxt is None or offset <= nxt:
            if nxt is not None and offset == nxt:
                self._next[tp] = nxt + 1
                self._waiting_since.pop(tp, None)
            if tp in self._admitted:
                self._admitted[tp] = max(self._admitted[tp], offset)
            return True
        now = self._clock()
        since = self._waiting_since.setdefault(tp, now)
        if now - since >= self.give_up_s:
            log.error(
                "%s[%d]: offsets %d..%d never came; going on from %d", tp[0], tp[1], nxt, offset - 1, offset
            )
            self.gaps_accepted += 1
            self._next[tp] = offset + 1
            self._admitted[tp] = max(self._admitted.get(tp, -1), offset)
            self._waiting_since.pop(tp, None)
            return True
        self.refused += 1
        self._refused_at[tp] = now
        asked = self._asked.get(tp)
        if asked is None or now - asked >= self.retry_s:
            self._asked[tp] = now
            self._seeks[tp] = nxt
        return False

    def take_seeks(self) -> dict[Any, int]:
        """Seeks to perform now (tp -> offset), each asked once."""
        seeks, self._seeks = self._seeks, {}
        return seeks

    def committed(self, tp: Any, offset: int) -> None:
        """A commit of ``offset`` went through: release ``tp`` if that settles it (see :meth:`release_settled`).

        >>> g = OffsetGate(clock=lambda: 0.0)
        >>> g.reset(("t", 0))
        >>> [g.admit(("t", 0), o) for o in (0, 1, 2)]
        [True, True, True]
        >>> g.committed(("t", 0), 2); bool(g)  # offset 2 admitted, not yet committed
        True
        >>> g.committed(("t", 0), 3); bool(g)
        False
        """
        if tp in self._next:
            self._committed[tp] = offset
            self._release_if_settled(tp)

    def release_settled(self) -> None:
        """Release every settled partition (call it now and then: commits stop when input does).

        Settled means every admitted record is committed and nothing was
        refused for ``quiet_s`` (records fetched from old positions may still
        sit in the stream's buffer for a while after a seek back): the group's
        committed offset now belongs to the new log, so Faust's own seek on a
        rebalance lands right. Released partitions take the fast path again;
        without this, one broker restart would gate every later batch record
        by record.
        """
        for tp in list(self._committed):
            self._release_if_settled(tp)

    def _release_if_settled(self, tp: Any) -> None:
        offset = self._committed.get(tp, 0)
        if not (offset >= 1 and self._next.get(tp) == offset == self._admitted.get(tp, -2) + 1):
            return
        if tp in self._waiting_since or tp in self._seeks:
            return
        refused = self._refused_at.get(tp)
        if refused is None or self._clock() - refused >= self.quiet_s:
            self.forget(tp)

    def may_commit(self, tp: Any, offset: int) -> bool:
        """False for a commit past what was admitted since the reset (an old log's position)."""
        admitted = self._admitted.get(tp)
        return admitted is None or offset <= admitted + 1


class JoinLogEpochs:
    """Wires :class:`LogEpochs` and :class:`OffsetGate` into a Faust app's consumer (see the module doc).

    Call :meth:`start` before the worker starts (it asks the broker, blocking),
    :meth:`install` once, and pass every micro-batch through :meth:`admit`.
    """

    def __init__(
        self,
        app: faust.App,
        epochs: LogEpochs,
        *,
        gate: OffsetGate | None = None,
        watch: DeliveryWatch[Any] | None = None,
    ) -> None:
        self.app = app
        self.epochs = epochs
        self.gate = gate or OffsetGate()
        #: Told of every seek this makes; the app checks it for partitions whose records never arrive.
        self.watch = watch or DeliveryWatch()
        self.topics = frozenset(epochs.topics)
        self.resets = 0  # partitions sought to a new log's start
        self._gated_consumer: Any = None

    def start(self) -> dict[str, str]:
        return self.epochs.start()

    def install(self, *, interval_s: float = 1.0) -> None:
        app = self.app

        @app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
            self._gate_commits()
            # Expectations outlive a rebalance that gives the partition back to this worker:
            # records fetched during the rebalance are discarded by Faust, which relies on its
            # seek to the committed offset to read them again — and a new log has none yet.
            mine = app.consumer.assignment()
            for tp, nxt in self.gate.expected().items():
                if tp not in mine:
                    self.gate.forget(tp)
                else:
                    self.watch.expect(tp, nxt)
            # Asked in-line: an await here lets the fetcher run against a half-made assignment.
            for topic in self.epochs.check_now():
                await self._reset(topic, inline=True)

        @app.timer(interval=interval_s)  # type: ignore[untyped-decorator]
        async def watch_input_logs() -> None:
            if app.rebalancing:
                return
            for topic in await self.epochs.check():
                await self._reset(topic)
            self.gate.release_settled()

    async def admit(self, events: Sequence[Any]) -> list[Any]:
        """The events of a batch that belong to the confirmed log, in order; the others are never acknowledged."""
        if not self.epochs.fresh():
            await self.confirm()
        if not self.gate:
            return list(events)
        out: list[Any] = []
        consumer: Any = self.app.consumer
        for event in events:
            m = event.message
            if m.topic not in self.topics or self.gate.admit(m.tp, m.offset):
                out.append(event)
            else:
                _never_ack(consumer, m)
        await self._seek_back(self.gate.take_seeks())
        return out

    async def confirm(self, *, attempts: int = 20, wait_s: float = 0.5) -> bool:
        """Check until the broker confirms the logs (resetting partitions of a new one); False if it never did."""
        for attempt in range(attempts):
            for topic in await self.epochs.check():
                await self._reset(topic)
            if self.epochs.fresh():
                return True
            if attempt + 1 < attempts:
                await asyncio.sleep(wait_s)
        log.warning("input logs not confirmed after %d attempts: going on unconfirmed", attempts)
        return False

    async def _reset(self, topic: str, *, inline: bool = False) -> None:
        """A new log of ``topic``: forget the old log's offsets and read owned partitions from 0.

        ``inline``: called from the assignment callback, where the consumer thread waits
        for us; anywhere else the seek must run in the consumer's thread (a seek from
        this one raced the fetcher: ``KeyError`` in ``fetched_records``, fetcher dead).
        """
        consumer: Any = self.app.consumer
        mine = sorted(tp for tp in consumer.assignment() if tp.topic == topic)
        for tp in mine:
            self.gate.reset(tp)  # from now on, records fetched from old positions are refused
        if inline:
            for tp in mine:
                await consumer.seek(tp, 0)  # synchronous underneath: nothing else runs meanwhile
        elif mine:
            await consumer._thread.seek_wait(dict.fromkeys(mine, 0))  # also clears _read_offset
        for tp in mine:
            _forget_offsets(consumer, tp)
            self.watch.expect(tp, 0)
        self.resets += len(mine)
        log.warning(
            "%s: new log; partitions %s read again from offset 0", topic, [tp.partition for tp in mine]
        )

    async def _seek_back(self, seeks: dict[Any, int]) -> None:
        consumer: Any = self.app.consumer
        assigned = consumer.assignment()
        for tp, offset in seeks.items():
            if tp not in assigned:
                continue
            log.info(
                "%s[%d]: records from past offset %d refused; seeking back", tp.topic, tp.partition, offset
            )
            # A committed offset beyond what this log has delivered is an old log's: forget it.
            consumer._committed_offset.pop(tp, None)
            await consumer._thread.seek_wait({tp: offset})  # in the consumer's thread (see _reset)
            self.watch.expect(tp, offset)

    def _gate_commits(self) -> None:
        """Route the consumer's commits through :meth:`_commit_offsets` (once)."""
        consumer: Any = self.app.consumer
        if self._gated_consumer is consumer:
            return
        original = consumer._commit_offsets

        async def gated(offsets: Any, start_new_transaction: bool = True) -> bool:
            if not self.epochs.fresh():  # acknowledged offsets may be an old log's: confirm first
                await self.confirm(attempts=4)
            allowed = {tp: o for tp, o in offsets.items() if self.gate.may_commit(tp, o)}
            if len(allowed) < len(offsets):
                log.warning("not committed (positions of an old log): %s",
                            {f"{tp.topic}[{tp.partition}]": o for tp, o in offsets.items() if tp not in allowed})  # fmt: skip
            if not allowed:
                return False
            ok = bool(await original(allowed, start_new_transaction=start_new_transaction))
            if ok and self.gate:
                for tp, offset in allowed.items():
                    self.gate.committed(tp, offset)
            return ok

        consumer._commit_offsets = gated
        self._gated_consumer = consumer


def _forget_offsets(consumer: Any, tp: TP) -> None:
    """Drop Faust's acknowledgement and commit bookkeeping of ``tp`` (it was about another log)."""
    for table in (consumer._acked, consumer._acked_index, consumer._gap, consumer._committed_offset):
        table.pop(tp, None)


def _never_ack(consumer: Any, message: Any) -> None:
    """Mark ``message`` acknowledged without recording its offset: it will be read again, in order."""
    with ack_lock:
        message.acked = True
        consumer._unacked_messages.discard(message)
