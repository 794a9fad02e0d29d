"""Read a changelog to its real end, past what the broker reports as its end.

Faust's table recovery reads each changelog partition up to the end offset
the broker reports. The embedded broker (Tansu) reports, as the end offset,
the *base* offset of the partition's last record batch (seen: 587 for 600
records), so recovery stops short of the last batch and a worker that takes
over after a crash starts from session states a few records old — the
sessions those records opened or completed are then lost (2–64 of 24,000
examples in the two-worker crash test). A fetch does return those records.
:func:`read_log` reads each partition up to the reported end however long
the fetches take, then on until two fetches in a row bring nothing; the join
restores its session table with it (:mod:`stream.session_store`).
:func:`read_tail` reads the last ``back`` records the same way. Re-applying a
suffix of a key-value log is harmless: each key ends at its last record. On
Apache Kafka the reported end is right and the quiet fetches only cost 0.4 s.

Until session 5 the read stopped after two empty 0.2 s fetches from the
start, which on a loaded machine can come back before the first fetch does:
the tail was then not read at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["apply_tail", "read_log", "read_tail"]


async def read_tail(
    bootstrap: str, topic: str, partitions: Iterable[int], *, back: int = 1000, idle_s: float = 0.2
) -> list[tuple[bytes, bytes | None]]:
    """``(key, value)`` of the last ``back`` records (or more) of each partition, in log order per partition."""
    return await read_log(bootstrap, topic, dict.fromkeys(partitions, -back), idle_s=idle_s)


async def read_log(
    bootstrap: str, topic: str, starts: Mapping[int, int], *, idle_s: float = 0.2
) -> list[tuple[bytes, bytes | None]]:
    """``(key, value)`` of each partition's records from its start offset to the real end, in log order.

    ``starts``: partition -> first offset; a negative one counts back from the
    reported end (``-1000``: the last 1,000 records, or more). Reads in
    record batches of up to 4 MiB per partition until two fetches in a row
    bring nothing.
    """
    tps = {p: TopicPartition(topic, p) for p in sorted(starts)}
    if not tps:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
        fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    try:
        consumer.assign(list(tps.values()))
        ends = await consumer.end_offsets(list(tps.values()))
        for p, tp in tps.items():
            start = starts[p]
            consumer.seek(tp, max(0, ends[tp] + start if start < 0 else start))
        out: list[tuple[bytes, bytes | None]] = []
        behind = set(tps.values())
        quiet = 0
        # Up to the reported end however long the fetches take (a busy machine), then on until
        # two fetches in a row bring nothing (the broker may report the end before its last batch).
        while behind or quiet < 2:
            batch = await consumer.getmany(timeout_ms=int(idle_s * 1000), max_records=100_000)
            for messages in batch.values():
                out.extend((m.key, m.value) for m in messages if m.key is not None)
            behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
            quiet = 0 if any(batch.values()) else quiet + 1
        return out
    finally:
        await consumer.stop()


def apply_tail(store: MutableMapping[bytes, bytes], records: Iterable[tuple[bytes, bytes | None]]) -> int:
    """Apply changelog records to a table's store (``None``: delete); returns how many were applied."""
    n = 0
    for key, value in records:
        if value is None:
            store.pop(key, None)
        else:
            store[key] = value
        n += 1
    return n
