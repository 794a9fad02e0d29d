"""``smarttrip worker --mode gate``: the promotion gate fed from the examples topic.

The loop reads every partition of the examples topic and of the impressions
topic (for the shadow fields of :mod:`scoring.shadow`; no consumer group: the
gate only reads, and every gate instance needs all segments), starting at
most ``window`` records before each partition's end, so a restarted gate
judges on recent traffic at once; every ``interval_s`` it runs
:meth:`stream.promotion_gate.PromotionGate.run_once`. Redis away: the run is
skipped, logged and retried at the next interval (nothing was written).
SIGTERM or SIGINT stops it after the current step.
"""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

from stream.model_store import ModelStore, StoreUnavailable
from stream.promotion_gate import GateSettings, PromotionGate
from stream.settings import StreamSettings

__all__ = ["run_gate_worker"]

log = logging.getLogger(__name__)


def run_gate_worker(
    settings: StreamSettings, gate_settings: GateSettings | None = None, *, max_runs: int | None = None
) -> PromotionGate:
    """Run the gate until a signal (or ``max_runs`` evaluations rounds, for tests); returns the gate."""
    from kafka import KafkaConsumer, TopicPartition
    from prometheus_client import start_http_server

    gate_settings = gate_settings or GateSettings.from_env()
    stop = {"now": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["now"] = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    store = ModelStore.from_url(settings.redis_url, namespace=settings.model_namespace)
    gate = PromotionGate(store, gate_settings)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_addr, registry=gate.metrics.registry)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    runs = 0
    try:
        topics = (settings.topic_examples, settings.topic_impressions)
        tps: list[TopicPartition] = []
        while not tps and not stop["now"]:  # the topics may not exist yet
            tps = [
                TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            if not any(tp.topic == settings.topic_examples for tp in tps):
                tps = []
                time.sleep(1.0)
        consumer.assign(tps)
        starts, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(starts[tp], ends[tp] - gate_settings.window))
        log.info("gate: reading %s (%d partitions)", ", ".join(topics), len(tps))
        next_run = time.monotonic() + gate_settings.interval_s
        while not stop["now"]:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.topic == settings.topic_examples:
                        gate.observe_raw(record.value)
                    else:
                        gate.observe_impression_raw(record.value)
            if time.monotonic() >= next_run:
                try:
                    gate.run_once()
                except StoreUnavailable as exc:
                    log.error("gate: redis unavailable, retrying next interval: %s", exc)
                runs += 1
                next_run = time.monotonic() + gate_settings.interval_s
                if max_runs is not None and runs >= max_runs:
                    break
    finally:
        consumer.close()
        store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return gate
