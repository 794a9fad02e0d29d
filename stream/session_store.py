"""The join's session table store: restored from its changelog in bulk by the join, not record by record by Faust.

Faust's table recovery reads a changelog partition from its start (an
in-memory store persists nothing) to the end the broker reports, one record
at a time through the consumer, the recovery queue and the store: ~2,000
records/s on the shared 2-core machine. The embedded broker (Tansu) never
compacts the sessions changelog, so it holds every state ever written, and a
restarted join worker spent longer and longer in recovery as a run went on:
23 s reading 45,000 records, then 10 s rebuilding 22,051 sessions, 49 s from
spawn to its first input record, late in a closed-loop kill run; later
restarts, on a busier machine, read nothing for 90 s and 180 s.

This store keeps Faust's table (changelog topic, co-partitioned assignment,
the recovery callback) but tells Faust's recovery there is nothing to read:
:meth:`SessionStore.persisted_offset` reports the partition's last offset as
the broker reported it at assignment. The join then reads the changelog
partitions it does not hold yet itself (:meth:`SessionStore.restore`, called
from the table's recovery callback, while Faust still holds the input
partitions paused): one bulk fetch per partition through aiokafka's record
batches, to the real end of the log (past Tansu's reported end, see
:mod:`stream.changelog_tail`), and each key is set once, to its last value.
The state is exactly what replaying the changelog gives; only the work done
to get there is smaller. Partitions kept across a rebalance are not read
again (their state is in memory, written by this worker); a revoked partition
is read again in full if it comes back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.stores import STORES
from faust.stores.memory import Store

from stream.changelog_tail import apply_tail, read_log

__all__ = ["STORE_URL", "SessionStore"]

log = logging.getLogger(__name__)

#: The table's store URL: its scheme maps to SessionStore in Faust's store registry (registered
#: below). It needs a host: yarl counts a bare ``sessions://`` as false, and Faust then uses memory://.
STORE_URL = "sessions://join"


class SessionStore(Store[bytes, "bytes | None"]):
    """A Faust in-memory store whose changelog partitions are restored by :meth:`restore`.

    Set :attr:`bootstrap` before the worker starts.
    """

    bootstrap: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._reported_last: dict[Any, int] = {}  # changelog tp -> last offset as reported at assignment
        self.restored: set[int] = set()  # changelog partitions whose state is in memory
        self.last_restore: tuple[int, int, float] = (0, 0, 0.0)  # (partitions, records, seconds)

    def persisted_offset(self, tp: Any) -> int | None:
        """The partition's last offset at assignment: Faust's recovery finds nothing left to read."""
        return self._reported_last.get(tp)

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        topic = self.table.changelog_topic.get_topic_name()
        for tp in revoked:
            if tp.topic == topic:
                self.restored.discard(tp.partition)
                self._reported_last.pop(tp, None)
        mine = [tp for tp in assigned if tp.topic == topic]
        if not mine:
            return
        try:
            ends = await asyncio.wait_for(
                _end_offsets(self.bootstrap, [TopicPartition(topic, tp.partition) for tp in mine]), timeout=15
            )
        except (TimeoutError, KafkaError, OSError) as exc:  # Faust's own recovery reads them: slow, exact
            log.warning("sessions changelog end offsets not read (%r): Faust recovers %s itself", exc, mine)
            for tp in mine:
                self._reported_last.pop(tp, None)
            return
        for tp in mine:
            self._reported_last[tp] = ends[tp.partition] - 1

    async def restore(self, partitions: Iterable[int]) -> int:
        """Read the changelog partitions of ``partitions`` not held yet, to their real end; returns records read."""
        todo = sorted(set(partitions) - self.restored)
        if not todo:
            return 0
        started = time.perf_counter()
        topic = self.table.changelog_topic.get_topic_name()
        records = await read_log(self.bootstrap, topic, dict.fromkeys(todo, 0))
        latest: dict[bytes, bytes | None] = {}
        for key, value in records:  # log order per partition; a key lives in one partition
            latest[key] = value
        apply_tail(self.data, latest.items())
        self.restored.update(todo)
        seconds = time.perf_counter() - started
        self.last_restore = (len(todo), len(records), seconds)
        log.info(
            "sessions changelog partitions %s restored: %d records, %d keys, %.1f s",
            todo, len(records), len(latest), seconds,
        )  # fmt: skip
        return len(records)


async def _end_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        return {tp.partition: int(offset) for tp, offset in ends.items()}
    finally:
        await consumer.stop()


STORES.aliases.setdefault(STORE_URL.split(":", 1)[0], f"{__name__}:SessionStore")
