"""Acknowledge an example to Kafka only once the models that learned it are stored.

Faust commits a partition's offset up to the last *acknowledged* message, and
``take_events`` acknowledges a batch as soon as the agent asks for the next
one — long before the learned models reach Redis. A worker killed in between
left a committed offset ahead of its stored models, and on restart Faust may
seek the partition to that committed offset *after* the learner's own seek to
where the stored models end: the records in between were never learned.

So the learner holds each batch's messages (one extra reference, taken while
the batch is being processed, so Faust's own ack does not complete them) and
releases them once no model with unpublished learning has read the
partition. The group's committed offset then never passes what the stored
models hold, whatever order the seeks come in. Held messages of a revoked
partition are dropped unacknowledged: the next owner reads them again, and
every model skips what it has already learned by its stored offsets.

If publishing fails for long (Redis down, a guardrail refusing a model), the
held messages are released anyway past ``limit`` — counted as forced — so
memory stays bounded; the resume guard (:mod:`stream.resume_guard`) still
catches a committed offset ahead of stored models that have read the
partition.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Protocol

__all__ = ["DurableAcks"]


class _Message(Protocol):
    @property
    def partition(self) -> int: ...

    def incref(self, n: int = 1) -> None: ...


class _Event(Protocol):
    @property
    def message(self) -> _Message: ...

    def ack(self) -> bool: ...


class DurableAcks:
    """Per-partition messages whose acknowledgement waits for a publish.

    >>> class M:
    ...     def __init__(self, p): self.partition, self.refs = p, 1
    ...     def incref(self, n=1): self.refs += n
    >>> class E:
    ...     def __init__(self, p): self.message = M(p)
    ...     def ack(self): self.message.refs -= 1; return self.message.refs == 0
    >>> acks = DurableAcks(limit=10)
    >>> events = [E(0), E(1)]
    >>> acks.hold(events)
    >>> [e.message.refs for e in events]  # Faust's own ack leaves one reference
    [2, 2]
    >>> acks.release(unpublished={0})  # partition 0 has learning not yet stored
    1
    >>> acks.held
    1
    """

    def __init__(self, *, limit: int = 50_000) -> None:
        if limit < 1:
            raise ValueError(f"limit: must be >= 1, got {limit}")
        self.limit = limit
        self._held: dict[int, list[_Event]] = {}
        self.held = 0
        self.forced = 0  # messages acknowledged past ``limit`` before their models were stored

    def hold(self, events: Iterable[_Event]) -> None:
        """Take one reference on each event's message (call before Faust acks the batch)."""
        for event in events:
            event.message.incref()
            self._held.setdefault(event.message.partition, []).append(event)
            self.held += 1

    def withhold(self, events: Iterable[_Event]) -> None:
        """Take one reference that is never given back: these messages are never acknowledged."""
        for event in events:
            event.message.incref()

    def release(self, unpublished: Collection[int]) -> int:
        """Acknowledge every held message of a partition not in ``unpublished``; returns how many."""
        released = 0
        for partition in [p for p in self._held if p not in unpublished]:
            released += self._ack(self._held.pop(partition))
        if self.held > self.limit:
            for partition in list(self._held):
                n = self._ack(self._held.pop(partition))
                released += n
                self.forced += n
        return released

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget held messages of revoked partitions without acknowledging them."""
        dropped = 0
        for partition in partitions:
            events = self._held.pop(partition, [])
            dropped += len(events)
            self.held -= len(events)
        return dropped

    def _ack(self, events: list[_Event]) -> int:
        for event in events:
            event.ack()
        self.held -= len(events)
        return len(events)
