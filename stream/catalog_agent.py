"""The catalog update agent: the compacted ``trips`` topic → new catalog versions in Redis.

Run it with ``smarttrip worker --mode catalog`` (settings: :mod:`stream.settings`;
``SMARTTRIP_CATALOG_INTERVAL_S`` is the shortest time between two versions,
``SMARTTRIP_CATALOG_HISTORY`` how many versions Redis keeps).

A plain aiokafka loop, not a Faust agent: it needs no consumer group and no
table. It assigns itself every partition of the topic and seeks each to the
offset the current stored version ends at (the offsets travel inside each
version, written in the same atomic script as the trips), so after a crash it
re-reads exactly what no published version contains — effectively-once,
like the learner. Records are applied in offset order per partition (the
topic is keyed by ``trip_id``, so every change of one trip is in order). A
version is published after a batch when something was read and at least
``catalog_interval_s`` have passed since the previous one; bad records go to
the dead-letter topic with their reason (:mod:`stream.catalog_updater`).

Run one agent per catalog namespace: a second one would not corrupt anything
(publishes are compare-and-set; the loser reloads and re-applies), but the
two would publish each other's updates twice as often.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from features.catalog_store import CatalogStore, EmptyStore, StoreUnavailable
from monitoring.catalog_metrics import CatalogMetrics
from stream.catalog_updater import CatalogUpdater, TripRecord
from stream.codec import encode
from stream.events import DeadLetter
from stream.settings import StreamSettings

__all__ = ["CatalogAgent", "run_catalog_agent"]

log = logging.getLogger(__name__)


class CatalogAgent:
    """The consume → apply → publish loop (see the module docstring); :meth:`run` until ``stop`` is set."""

    def __init__(self, settings: StreamSettings, *, metrics: CatalogMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or CatalogMetrics()
        self.store = CatalogStore.from_url(
            settings.redis_url, namespace=settings.model_namespace, history=settings.catalog_history
        )
        self.updater = CatalogUpdater(self.store, topic=settings.topic_trips, metrics=self.metrics)
        self.stop = asyncio.Event()

    async def run(self) -> None:
        try:
            if not await self._load_first_version():
                return
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest",
            )  # fmt: skip
            producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, linger_ms=5)
            await consumer.start()
            await producer.start()
            try:
                await self._assign(consumer)
                await self._loop(consumer, producer)
            finally:
                await consumer.stop()
                await producer.stop()
        finally:
            self.store.close()

    async def _load_first_version(self) -> bool:
        """Wait for a published catalog (updates to an empty store would all be unknown trips)."""
        warned = False
        while not self.stop.is_set():
            try:
                meta = await asyncio.to_thread(self.updater.load)
                log.warning("catalog agent: starting from version %d (%d trips)", meta.version, meta.trips)
                return True
            except (EmptyStore, StoreUnavailable) as exc:
                if not warned:
                    log.warning("catalog agent: waiting for a catalog in Redis (%s)", exc)
                    warned = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.5)
        return False

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        topic = self.settings.topic_trips
        deadline = time.monotonic() + 30
        while not (partitions := consumer.partitions_for_topic(topic)):
            if time.monotonic() > deadline or self.stop.is_set():
                raise RuntimeError(f"topic {topic!r}: no partitions found (is it created?)")
            await consumer.topics()  # refreshes metadata
            await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, self.updater.start_offset(tp.partition))

    async def _loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        interval = self.settings.catalog_interval_s
        last_publish = -float("inf")
        while not self.stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            dead: list[DeadLetter] = []
            for tp, records in batch.items():
                for r in records:
                    letter = self.updater.offer(
                        TripRecord(tp.partition, r.offset, r.key, r.value, r.timestamp / 1000)
                    )
                    if letter is not None:
                        dead.append(letter)
            if dead:
                await self._dead_letter(producer, dead)
            if self.updater.dirty and time.monotonic() - last_publish >= interval:
                last_publish = time.monotonic()
                try:
                    meta, late = await asyncio.to_thread(self.updater.publish)
                except StoreUnavailable as exc:
                    self.metrics.publishes.labels("error").inc()
                    log.error("catalog agent: cannot publish (%s); retrying in %.1fs", exc, interval)
                    continue
                if late:
                    await self._dead_letter(producer, late)
                if meta is not None:
                    log.info(
                        "catalog agent: published version %d (%d updates)", meta.version, meta.updates_applied
                    )

    async def _dead_letter(self, producer: AIOKafkaProducer, letters: Sequence[DeadLetter]) -> None:
        topic, key = self.settings.topic_deadletter, self.settings.topic_trips.encode()
        try:
            futures = [await producer.send(topic, encode(dl), key=key) for dl in letters]
            await asyncio.gather(*futures)
        except Exception as exc:  # Kafka away: the reasons are still logged and counted
            self.metrics.deadletter_errors.inc(len(letters))
            for dl in letters:
                log.error("catalog agent: cannot dead-letter (%s): %s: %s", exc, dl.reason, dl.detail)


def run_catalog_agent(settings: StreamSettings, loglevel: str = "WARNING") -> None:
    """Run the agent in this process until SIGINT/SIGTERM, with metrics on ``SMARTTRIP_METRICS_PORT``."""
    from prometheus_client import start_http_server

    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    metrics = CatalogMetrics()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_addr, registry=metrics.registry)

    async def main() -> None:
        agent = CatalogAgent(settings, metrics=metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.stop.set)
        await agent.run()

    asyncio.run(main())
