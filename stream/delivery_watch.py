"""Notice input partitions whose fetched records never reach the agent, and say where to read them again.

Faust drops records it has fetched in some cases around a rebalance — the
rest of a fetched batch once the flow stops or the consumer generation
changes, records delivered behind its read offset — and counts on its seek
to the committed offsets to read them again. When that seek lands past the
dropped records (it ran before they were dropped, or the committed offset
was written while they were in flight), the consumer's fetch position is
past records the agent never got, and nothing reads them again: the
partition stalls without an error. Seen in session 8: a join worker frozen
through a broker restart admitted a new log's partition up to offset 170,
committed 171, and its fetch position stood at the log's end (1,461) for
the rest of the run, no record after 170 ever delivered.

:class:`DeliveryWatch` keeps, per input partition, the offset of the last
record the agent received and when. A partition is *stalled* when the
consumer's fetch position is past that record + 1, nothing of it reached
the agent for ``stall_s``, and the agent's stream buffer is empty (records
fetched but still buffered are on their way, not lost). Then the caller
seeks it back to the record after the last one received. A false alarm (a
drain loop that held fetched records for longer than ``stall_s`` without
buffering them) costs re-delivered records, which the join takes as
duplicates, never a loss.

The same offsets are the join's input progress (:meth:`DeliveryWatch.progress`):
its lag and its "topic still behind" test for the watermark count from what
the agent took, not from Faust's read offset, which counts records waiting
in the stream's buffer as read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

__all__ = ["DeliveryWatch"]

K = TypeVar("K", bound=Hashable)  # a partition: Faust's TP in the worker


class DeliveryWatch(Generic[K]):
    """Last offset received per partition; :meth:`stalled` lists partitions to read again.

    >>> now = [0.0]
    >>> w = DeliveryWatch(stall_s=2.0, clock=lambda: now[0])
    >>> w.received([(("t", 0), 170)])
    >>> now[0] = 1.0
    >>> w.stalled({("t", 0): 1461}, buffered=False)  # not yet stalled long enough
    {}
    >>> now[0] = 2.5
    >>> w.stalled({("t", 0): 1461}, buffered=False)
    {('t', 0): 171}
    >>> w.stalled({("t", 0): 1461}, buffered=False)  # asked: wait stall_s before asking again
    {}
    >>> w.stalled({("t", 0): 171}, buffered=False)  # position at the next record: nothing missing
    {}
    >>> w.progress()
    {('t', 0): 170}
    """

    def __init__(self, *, stall_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self._clock = clock
        self._last: dict[K, int] = {}  # offset of the last record received
        self._at: dict[K, float] = {}  # when a record was last received, or a seek asked
        self.seeks = 0

    def received(self, records: Iterable[tuple[K, int]]) -> None:
        """The agent received these records ((partition, offset) of each, in order)."""
        now = self._clock()
        last, at = self._last, self._at
        for tp, offset in records:
            last[tp] = offset
            at[tp] = now

    def progress(self) -> dict[K, int]:
        """The offset of the last record received per partition (what the agent has taken, not its buffer)."""
        return dict(self._last)

    def expect(self, tp: K, offset: int) -> None:
        """``tp`` was sought to ``offset``: its next record should be that one."""
        self._last[tp] = offset - 1
        self._at[tp] = self._clock()

    def forget(self, tps: Iterable[K] | None = None) -> None:
        """Forget ``tps`` (all when None): after an assignment, what was received says nothing of where reading starts."""
        if tps is None:
            self._last.clear()
            self._at.clear()
            return
        for tp in tps:
            self._last.pop(tp, None)
            self._at.pop(tp, None)

    def stalled(self, positions: Mapping[K, int | None], *, buffered: bool) -> dict[K, int]:
        """Partitions fetched past records never received (tp -> offset to seek back to); each asked once per ``stall_s``.

        ``positions``: the consumer's fetch position of each partition to check;
        ``buffered``: whether the agent's stream buffer holds records now.
        """
        if buffered:
            return {}
        now = self._clock()
        out: dict[K, int] = {}
        for tp, position in positions.items():
            last = self._last.get(tp)
            if last is None or position is None or position <= last + 1:
                continue
            if now - self._at.get(tp, now) < self.stall_s:
                continue
            out[tp] = last + 1
            self._at[tp] = now
        self.seeks += len(out)
        return out
