"""Helpers for integration tests that run stream workers against the embedded broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
from kafka import KafkaConsumer, KafkaProducer

from stream.embedded import EmbeddedServices, ensure_topics
from stream.synthetic import TopicRecord


@dataclass(frozen=True)
class Run:
    """Unique topics and app id for one test, with the worker environment."""

    uid: str
    env: dict[str, str]
    impressions: str
    interactions: str
    examples: str
    deadletter: str


def new_run(services: EmbeddedServices, *, partitions: int = 4, **settings: str) -> Run:
    uid = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{uid}" for k in ("impressions", "interactions", "examples", "deadletter")}
    ensure_topics(services.bootstrap_servers, {n: partitions for n in names.values()})
    env = {
        "SMARTTRIP_KAFKA_BOOTSTRAP": services.bootstrap_servers,
        "SMARTTRIP_APP_ID": f"join-{uid}",
        "SMARTTRIP_PARTITIONS": str(partitions),
        # Tansu: a group join takes ~half the session timeout.
        "SMARTTRIP_SESSION_TIMEOUT_S": "2",
        "SMARTTRIP_HEARTBEAT_S": "0.2",
        "SMARTTRIP_JOIN_WINDOW_S": "2",
        "SMARTTRIP_WATERMARK_DELAY_S": "1",
        "SMARTTRIP_IDLE_S": "3",
        **{f"SMARTTRIP_TOPIC_{k.upper()}": v for k, v in names.items()},
        **{f"SMARTTRIP_{k.upper()}": v for k, v in settings.items()},
    }
    return Run(uid, env, **names)


def produce(
    services: EmbeddedServices, records: Iterable[TopicRecord | tuple[str, bytes, bytes | None]]
) -> int:
    producer = KafkaProducer(
        bootstrap_servers=services.bootstrap_servers, linger_ms=5, max_request_size=4 * 1024 * 1024
    )
    n = 0
    for rec in records:
        topic, key, value = (rec.topic, rec.key, rec.value) if isinstance(rec, TopicRecord) else rec
        producer.send(topic, key=key, value=value)
        n += 1
    producer.flush(30)
    producer.close(5)
    return n


def consume_until(
    services: EmbeddedServices, topic: str, done: Callable[[list[bytes]], bool], timeout: float
) -> list[bytes]:
    """Values read from the start of ``topic`` until ``done(values)`` or the timeout."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=services.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=8 * 1024 * 1024,
    )
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done(values):
            for records in consumer.poll(timeout_ms=200).values():
                values.extend(r.value for r in records)
    finally:
        consumer.close()
    return values


def example_dicts(raw: bytes | None) -> list[dict[str, object]]:
    """The examples of one ``examples`` record as JSON objects: one, or a closed slate's."""
    obj = orjson.loads(raw or b"{}")
    return list(obj["examples"]) if obj.get("kind") == "examples" else [obj]


def distinct_examples(n: int) -> Callable[[list[bytes]], bool]:
    """A ``done`` for :func:`consume_until`: true once ``n`` distinct example ids were read."""
    seen: set[str] = set()
    read = 0

    def done(values: list[bytes]) -> bool:
        nonlocal read
        for raw in values[read:]:
            seen.update(str(ex["example_id"]) for ex in example_dicts(raw))
        read = len(values)
        return len(seen) >= n

    return done
