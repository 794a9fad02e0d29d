"""Kafka readiness probe and explicit topic creation, through kafka-python's admin client.

Why explicit topics: Tansu (like Kafka with auto-create on) creates an unknown
topic on first use with a default partition count (4 in Tansu). The join needs
impressions and interactions co-partitioned, and Faust needs each changelog to
match its source topic, so we create every topic with the count we mean and
refuse to go on if an existing topic disagrees.

Only the part of the admin API that is the same in kafka-python 2.x and 3.x is
used (``list_topics``, ``create_topics``, ``describe_topics``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from stream._managed_process import EmbeddedServicesError

# kafka-python 3 loads its protocol schemas at import time through the
# deprecated importlib.resources.open_text/read_text; under pytest's
# ``filterwarnings = error`` that import would fail wherever it first happens.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

__all__ = ["TopicIds", "ensure_topics", "kafka_metadata_ready", "topic_id", "topic_ids"]

_CLIENT_ID = "smarttrip-embedded"
# kafka-python logs every refused connection while the broker boots; we poll on purpose.
_QUIET_LOGGERS = ("kafka", "kafka.conn", "kafka.client", "kafka.net")


@contextlib.contextmanager
def _admin(bootstrap_servers: str, *, timeout: float) -> Iterator[Any]:
    admin = _new_admin(bootstrap_servers, timeout=timeout)
    try:
        yield admin
    finally:
        admin.close()


def _new_admin(bootstrap_servers: str, *, timeout: float) -> Any:
    configs: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers.split(","),
        "client_id": _CLIENT_ID,
        "request_timeout_ms": max(int(timeout * 1000), 1000),
    }
    if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:  # kafka-python >= 3
        configs["bootstrap_timeout_ms"] = configs["request_timeout_ms"]
    return KafkaAdminClient(**configs)


@contextlib.contextmanager
def _quiet_kafka_logs() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def kafka_metadata_ready(
    bootstrap_servers: str, *, timeout: float, alive: Callable[[], bool] = lambda: True
) -> bool:
    """True once a metadata request to ``bootstrap_servers`` is answered within ``timeout`` s.

    Returns False early if ``alive()`` reports that the broker process has exited.
    """
    deadline = time.monotonic() + timeout
    with _quiet_kafka_logs():
        while alive():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                with _admin(bootstrap_servers, timeout=min(remaining, 2.0)) as admin:
                    admin.list_topics()
                    return True
            except (KafkaError, OSError):
                time.sleep(0.05)
    return False


def _validate(topics: Mapping[str, int]) -> None:
    for name, partitions in topics.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"topics: topic name must be a non-empty string, got {name!r}")
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"topics[{name!r}]: partition count must be an int >= 1, got {partitions!r}")


def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    """Partition count per topic whose metadata is complete (kafka-python 2.x and 3.x keys)."""
    counts: dict[str, int] = {}
    for info in admin.describe_topics(names):
        name = info.get("name", info.get("topic"))
        if info.get("error_code", 0) == 0 and info.get("partitions"):
            counts[str(name)] = len(info["partitions"])
    return counts


def ensure_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    timeout: float = 10.0,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, int]:
    """Create the missing ``topics`` (name → partitions) and check the existing ones.

    Topics are created with replication factor 1 (a dev/test setting) and the
    topic-level ``configs`` given for them (e.g. ``cleanup.policy=compact``;
    a broker may ignore such configs — Tansu does not compact). A topic
    that already exists is fine if its partition count matches; otherwise
    :class:`EmbeddedServicesError` lists every mismatch. Returns the partition
    count of each requested topic as the broker reports it.
    """
    _validate(topics)
    if not topics:
        return {}
    names = sorted(topics)
    try:
        with _admin(bootstrap_servers, timeout=timeout) as admin:
            existing = set(admin.list_topics())
            for name in names:
                if name in existing:
                    continue
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(
                        [
                            NewTopic(
                                name=name,
                                num_partitions=topics[name],
                                replication_factor=1,
                                topic_configs=dict((configs or {}).get(name, {})),
                            )
                        ]
                    )
            deadline = time.monotonic() + timeout
            counts = _partition_counts(admin, names)
            while len(counts) < len(names) and time.monotonic() < deadline:
                time.sleep(0.05)
                counts = _partition_counts(admin, names)
    except KafkaError as exc:
        raise EmbeddedServicesError(
            f"creating topics on {bootstrap_servers} failed: {exc}", retriable=bool(exc.retriable)
        ) from exc
    missing = [name for name in names if name not in counts]
    if missing:
        raise EmbeddedServicesError(f"topics {missing} have no metadata after {timeout:.0f}s", retriable=True)
    wrong = {name: (counts[name], topics[name]) for name in names if counts[name] != topics[name]}
    if wrong:
        details = ", ".join(
            f"{n!r} has {have} partitions, wanted {want}" for n, (have, want) in wrong.items()
        )
        raise EmbeddedServicesError(
            f"existing topics disagree with the requested partition counts: {details}"
        )
    return counts


def topic_id(bootstrap_servers: str, topic: str, *, timeout: float = 5.0) -> str | None:
    """The topic's id as the broker reports it; None when the broker gives topics no ids.

    A topic created again (e.g. by a broker that lost its storage) gets a new id,
    so the id tells one log of a topic from the next (see :mod:`stream.log_epoch`).
    Raises ``KafkaError``/``OSError`` when the broker cannot be asked.
    """
    return topic_ids(bootstrap_servers, [topic], timeout=timeout)[topic]


def topic_ids(
    bootstrap_servers: str, topics: Sequence[str], *, timeout: float = 5.0
) -> dict[str, str | None]:
    """:func:`topic_id` of several topics in one request (topic -> id, None where the broker gives none).

    Raises ``KafkaError`` if a topic is not described (unknown, or no leader yet)
    and ``KafkaError``/``OSError`` when the broker cannot be asked.
    """
    with _admin(bootstrap_servers, timeout=timeout) as admin:
        described = admin.describe_topics(list(topics))
    return _ids_of(described, topics)


class TopicIds:
    """:func:`topic_ids` through one admin client kept open (a new one after any failure).

    The workers ask every second or two; a client per question cost ~4.7 ms of
    CPU each time (connect, metadata, close). Thread-safe: checks run in an
    executor and may overlap. Call :meth:`close` when done.
    """

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._admin: Any = None
        self._servers = ""

    def __call__(self, bootstrap_servers: str, topics: Sequence[str]) -> dict[str, str | None]:
        with self._lock:
            try:
                if self._admin is None or self._servers != bootstrap_servers:
                    self._close()
                    self._admin = _new_admin(bootstrap_servers, timeout=self.timeout)
                    self._servers = bootstrap_servers
                described = self._admin.describe_topics(list(topics))
            except BaseException:
                self._close()  # a broken or restarted broker: the next question connects anew
                raise
        return _ids_of(described, topics)

    def topic_id(self, bootstrap_servers: str, topic: str) -> str | None:
        """:func:`topic_id` through the kept client."""
        return self(bootstrap_servers, [topic])[topic]

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()


def _ids_of(described: Sequence[Mapping[str, Any]], topics: Sequence[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for entry in described:
        name = entry.get("name")
        if name in topics and not entry.get("error_code"):
            tid = str(entry.get("topic_id") or "")
            found[str(name)] = tid if set(tid) - {"0", "-"} else None  # the all-zero UUID: no id
    missing = [t for t in topics if t not in found]
    if missing:
        raise KafkaError(f"topics {missing!r} not described: {described!r}")
    return found
