"""Produce a worker's output records in bulk through aiokafka's record-batch API.

Faust's ``send_soon`` buffer holds 100 messages with a future each; at ten
examples per slate it was the join's bottleneck, and so was aiokafka's
``send`` (a coroutine, a partitioner call and a future per record).
:class:`BatchSender` groups the records of a call by (topic, partition), in
order, appends each group to one record batch and hands it over with
``send_batch``: per record only the batch append remains. Partitions are the
producer's own partitioner's (murmur2 of the key, as ``send`` would choose),
cached per repeated key. Order within a partition is kept.

State records (the join's changelog) follow the rest, and only once the
broker has acknowledged every other record of the call: a closed window's
tombstone must not reach the log before the examples it emitted (batches
of different partitions travel independently, and a SIGKILL between the two
would lose the examples for good: input offsets committed, session gone).
The caller waits for that round trip, once per call (the code before waited
once per changelog partition holding state records, up to four times;
the wait was ~10 % of the join worker's wall time in ``smarttrip bench
join`` on the shared machine). Sending the state
records from a background chain instead, with Faust's pre-commit flush
waiting for the chain, lost examples in
``test_two_workers_one_killed_still_yield_every_example`` (1 run of 3; the
code before it passed 3 of 3), so the wait stays.

At-least-once: Faust commits input offsets only after
``app.producer.flush()``, which waits for every batch handed over here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from aiokafka.partitioner import murmur2

__all__ = ["BatchSender", "OutRecord", "murmur2_hash", "murmur2_partition", "sender_for"]


class OutRecord(Protocol):
    """A record to produce (:class:`stream.join_runtime.Output` is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes | None: ...


class _Group(NamedTuple):
    topic: str
    partition: int
    records: list[OutRecord]


_KEY_CACHE_SIZE = 4096
_STATE_CACHE_SIZE = 65536


def murmur2_hash(key: bytes) -> int:
    """Kafka's default partitioner's hash of a key (non-negative murmur2); the partition is it modulo the count."""
    return int(murmur2(key) & 0x7FFFFFFF)


def murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default (murmur2) partition of a key: what producers and the table use."""
    return murmur2_hash(key) % partitions


class BatchSender:
    """Sends records through an aiokafka producer, one record batch per (topic, partition) and call.

    Parameters
    ----------
    producer
        A started ``aiokafka.AIOKafkaProducer`` (Faust's, underneath its own producer).
    """

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._partitions: dict[tuple[str, bytes], int] = {}  # repeated keys (segments)
        self._state_partitions: dict[bytes, int] = {}  # session keys: written ~3 times each
        self._state_count: dict[str, int] = {}

    async def send(self, records: Iterable[OutRecord], *, state_topic: str | None = None) -> None:
        """Hand ``records`` to the producer; state records only after the others are acknowledged."""
        pending: list[asyncio.Future[Any]] = []
        for group in await self._grouped(records, state_topic):
            if group.topic != state_topic:
                pending.extend(await self._send_group(group))
                continue
            if pending:  # once, before the first state group: the state groups need not wait for each other
                await asyncio.gather(*pending)  # this call's examples are in the log
                pending = []
            await self._send_group(group)

    async def _send_group(self, group: _Group) -> list[asyncio.Future[Any]]:
        producer, topic, partition = self._producer, group.topic, group.partition
        sent: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for o in group.records:
            if batch.append(key=o.key, value=o.value, timestamp=None) is None:  # full: ship it, start anew
                sent.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=o.key, value=o.value, timestamp=None)  # a first record always fits
        sent.append(await producer.send_batch(batch, topic, partition=partition))
        return sent

    async def _grouped(self, records: Iterable[OutRecord], state_topic: str | None) -> list[_Group]:
        """Records grouped by (topic, partition) in order of first appearance, state groups last."""
        groups: dict[tuple[str, int], list[OutRecord]] = {}
        cache = self._partitions
        state_cache = self._state_partitions
        n_state = 0
        for o in records:
            if o.topic == state_topic:
                if not n_state:
                    n_state = await self._count(o.topic)
                p = state_cache.get(o.key)
                if p is None:
                    # what the producer's default partitioner picks: murmur2 over all partitions
                    p = murmur2_partition(o.key, n_state)
                    if len(state_cache) >= _STATE_CACHE_SIZE:
                        state_cache.clear()
                    state_cache[o.key] = p
            else:
                hit = cache.get((o.topic, o.key))  # most keys repeat (segments): no await for them
                p = hit if hit is not None else await self._partition(o.topic, o.key)
            group = groups.get((o.topic, p))
            if group is None:
                groups[(o.topic, p)] = [o]
            else:
                group.append(o)
        ordered = sorted(groups.items(), key=lambda kv: kv[0][0] == state_topic)  # stable: state last
        return [_Group(topic, partition, outs) for (topic, partition), outs in ordered]

    async def _count(self, topic: str) -> int:
        n = self._state_count.get(topic)
        if n is None:
            await self._producer.client._wait_on_metadata(topic)
            n = len(self._producer.client.cluster.partitions_for_topic(topic))
            self._state_count[topic] = n
        return n

    async def _partition(self, topic: str, key: bytes) -> int:
        await self._producer.client._wait_on_metadata(topic)  # what send() does first
        p = int(self._producer._partition(topic, None, key, None, key, None))
        if len(self._partitions) >= _KEY_CACHE_SIZE:
            self._partitions.clear()
        self._partitions[(topic, key)] = p
        return p


def sender_for(app: Any) -> BatchSender:
    """The :class:`BatchSender` of a Faust app, made on first use (its partition caches live on)."""
    sender: BatchSender | None = getattr(app, "_smarttrip_sender", None)
    if sender is None:
        sender = BatchSender(app.producer._ensure_producer())  # aiokafka, underneath Faust's producer
        app._smarttrip_sender = sender
    return sender
