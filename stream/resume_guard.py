"""Keep each partition's examples contiguous from where the stored models end.

On assignment the learner seeks every partition back to one past the lowest
offset its stored models have learned (records learned but not yet published
died with the last worker). Faust may seek the partition again afterwards — to
the group's committed offset, once its own rebalance work is done — and the
committed offset can be *ahead* of what was published: the records in between
would then never be learned. So the learner does not trust the position it
gets: it expects the partition's next record at the resume offset, drops any
record beyond it, and asks for a seek back to it (again every ``retry_s``
while records keep arriving from too far on, or while nothing at the
expected offset has arrived: :meth:`ResumeGuard.overdue`). Records below the expected
offset are re-deliveries, which every model skips by its own offsets.

Offsets of the examples topic are contiguous (it is neither compacted nor
transactional); a partition with no stored model has no expectation. If the
records are really gone (retention deleted them), seeking back cannot help:
after ``max_retries`` seeks (30 s by default: records already fetched from too
far on keep arriving for a few seconds after a seek back, until Faust's
stream buffer has drained) the gap is accepted, logged and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from stream.learner_runtime import ExampleRecord

__all__ = ["ResumeGuard"]

log = logging.getLogger(__name__)


class ResumeGuard:
    """Admits records in contiguous offset order per partition; asks for seeks over gaps.

    >>> g = ResumeGuard(clock=lambda: 0.0)
    >>> g.expect(0, 10)
    >>> [r.offset for r in g.admit([ExampleRecord(0, 12, b""), ExampleRecord(0, 13, b"")])]
    []
    >>> g.take_seeks()
    {0: 10}
    >>> [r.offset for r in g.admit([ExampleRecord(0, o, b"") for o in (9, 10, 11)])]
    [9, 10, 11]
    >>> g.take_seeks()
    {}
    """

    def __init__(
        self, *, retry_s: float = 1.0, max_retries: int = 30, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.retry_s = retry_s
        self.max_retries = max_retries
        self._retries: dict[int, int] = {}
        self._clock = clock
        self._next: dict[int, int] = {}
        self._asked: dict[int, float] = {}  # partition -> when a seek back was last requested
        self._seeks: dict[int, int] = {}
        self.dropped = 0
        self.gaps_accepted = 0

    def expect(self, partition: int, offset: int | None) -> None:
        """The partition's next record should be at ``offset`` (None: accept whatever comes)."""
        if offset is None:
            self._next.pop(partition, None)
        else:
            self._next[partition] = offset
        self._asked.pop(partition, None)
        self._retries.pop(partition, None)
        self._seeks.pop(partition, None)

    def admit(self, records: Iterable[ExampleRecord]) -> list[ExampleRecord]:
        out: list[ExampleRecord] = []
        for r in records:
            nxt = self._next.get(r.partition)
            if nxt is None or r.offset <= nxt:
                out.append(r)
                if nxt is not None and r.offset == nxt:
                    self._next[r.partition] = nxt + 1
                    self._asked.pop(r.partition, None)
                    self._retries.pop(r.partition, None)
                continue
            asked = self._asked.get(r.partition)
            now = self._clock()
            if asked is not None and now - asked < self.retry_s:
                self.dropped += 1  # a seek back is on its way
                continue
            if self._retries.get(r.partition, 0) >= self.max_retries:
                log.error("examples partition %d: offsets %d..%d are not in the log; going on from %d",
                          r.partition, nxt, r.offset - 1, r.offset)  # fmt: skip
                self.gaps_accepted += 1
                self._next[r.partition] = r.offset + 1
                self._retries.pop(r.partition, None)
                self._asked.pop(r.partition, None)
                out.append(r)
                continue
            self.dropped += 1
            self._retries[r.partition] = self._retries.get(r.partition, 0) + 1
            self._asked[r.partition] = now
            self._seeks[r.partition] = nxt
        return out

    def overdue(self) -> dict[int, int]:
        """Seeks back asked at least ``retry_s`` ago and still unanswered (partition -> offset): ask again.

        Why: records fetched before a seek back and still buffered move Faust's read offset past
        the seek, so what the seek fetches is dropped before it reaches the agent; when nothing
        arrives from beyond any more (the end of the topic), only another seek gets the records.
        A seek answered by the expected record is not overdue.

        >>> now = [0.0]
        >>> g = ResumeGuard(clock=lambda: now[0])
        >>> g.expect(0, 10)
        >>> g.admit([ExampleRecord(0, 12, b"")]), g.take_seeks()
        ([], {0: 10})
        >>> now[0] = 0.5
        >>> g.overdue()
        {}
        >>> now[0] = 1.5
        >>> g.overdue(), g.overdue()
        ({0: 10}, {})
        >>> [r.offset for r in g.admit([ExampleRecord(0, 10, b"")])]
        [10]
        >>> now[0] = 9.0
        >>> g.overdue()
        {}
        """
        now = self._clock()
        out: dict[int, int] = {}
        for partition, asked in self._asked.items():
            if now - asked >= self.retry_s and partition in self._next:
                self._asked[partition] = now
                out[partition] = self._next[partition]
        return out

    def take_seeks(self) -> dict[int, int]:
        """Seeks to perform now (partition -> offset), each requested once."""
        seeks, self._seeks = self._seeks, {}
        return seeks
