"""Stream-worker settings, read once from ``SMARTTRIP_*`` environment variables.

=================================  =========================================  ===========
variable                           meaning                                    default
=================================  =========================================  ===========
SMARTTRIP_KAFKA_BOOTSTRAP          broker host:port (comma-separated)         127.0.0.1:9092
SMARTTRIP_APP_ID                   Faust app id = consumer group              smarttrip-stream
SMARTTRIP_PARTITIONS               partitions of the source topics            4
SMARTTRIP_SESSION_TIMEOUT_S        consumer-group session timeout             6
SMARTTRIP_HEARTBEAT_S              consumer heartbeat interval                0.5
SMARTTRIP_JOIN_WINDOW_S            attribution window after an impression     600
SMARTTRIP_JOIN_GRACE_S             how long a click waits for its impression  30
SMARTTRIP_WATERMARK_DELAY_S        event-time slack before windows close      5
SMARTTRIP_ALLOWED_LATENESS_S       how long closed slates accept corrections  300
SMARTTRIP_IDLE_S                   idle partition: event time follows clock   2
SMARTTRIP_BATCH_SIZE               events per micro-batch                     500
SMARTTRIP_BATCH_WITHIN_S           longest wait to fill a micro-batch         0.05
SMARTTRIP_EVENT_LOOP               asyncio or uvloop (if installed)           uvloop
SMARTTRIP_FETCH_BYTES              most bytes fetched per partition           4194304
SMARTTRIP_STREAM_BUFFER            events buffered ahead of an agent          16384
SMARTTRIP_PRODUCER_BATCH_BYTES     largest producer record batch              1048576
SMARTTRIP_METRICS_PORT             Prometheus port (0 = none)                 0
SMARTTRIP_METRICS_ADDR             address the metrics port binds             127.0.0.1
SMARTTRIP_REDIS_URL                the model store (learner worker)           redis://127.0.0.1:6379/0
SMARTTRIP_MODEL_NAMESPACE          key prefix of the model store              smarttrip
SMARTTRIP_PUBLISH_INTERVAL_S       most time between model publishes          0.25
SMARTTRIP_PUBLISH_EVERY_N          ... or this many examples, if sooner       5000
SMARTTRIP_MIN_EXAMPLES             guardrail: fewest examples to publish      0
SMARTTRIP_MAX_ABS_WEIGHT           guardrail: largest allowed |weight|        1000
SMARTTRIP_LOG_EPOCH                id of the examples log the offsets refer   0
=================================  =========================================  ===========

Topic names: SMARTTRIP_TOPIC_IMPRESSIONS, _INTERACTIONS, _EXAMPLES, _DEADLETTER.
A session timeout of a few seconds matters on the embedded (Tansu) broker: a
consumer-group join takes about half of it, 30 s with Faust's default of 60.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

ENV_PREFIX = "SMARTTRIP_"
_CONVERTERS: dict[str, type] = {"int": int, "float": float, "str": str}


class SettingsError(ValueError):
    """An environment variable holds a value of the wrong type or range."""


@dataclass(frozen=True)
class StreamSettings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    app_id: str = "smarttrip-stream"
    partitions: int = 4
    session_timeout_s: float = 6.0
    heartbeat_s: float = 0.5
    join_window_s: float = 600.0
    join_grace_s: float = 30.0
    watermark_delay_s: float = 5.0
    allowed_lateness_s: float = 300.0
    idle_s: float = 2.0
    batch_size: int = 500
    batch_within_s: float = 0.05
    event_loop: str = "uvloop"
    fetch_bytes: int = 4 * 1024 * 1024
    stream_buffer: int = 16384
    producer_batch_bytes: int = 1024 * 1024
    metrics_port: int = 0
    metrics_addr: str = "127.0.0.1"
    redis_url: str = "redis://127.0.0.1:6379/0"
    model_namespace: str = "smarttrip"
    publish_interval_s: float = 0.25
    publish_every_n: int = 5000
    min_examples: int = 0
    max_abs_weight: float = 1000.0
    log_epoch: str = "0"
    topic_impressions: str = "impressions"
    topic_interactions: str = "interactions"
    topic_examples: str = "examples"
    topic_deadletter: str = "deadletter"

    def __post_init__(self) -> None:
        for name in ("partitions", "batch_size", "publish_every_n", "fetch_bytes", "stream_buffer",
                     "producer_batch_bytes"):  # fmt: skip
            if getattr(self, name) < 1:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be >= 1, got {getattr(self, name)}")
        for name in (
            "session_timeout_s",
            "heartbeat_s",
            "join_window_s",
            "batch_within_s",
            "publish_interval_s",
        ):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be > 0, got {getattr(self, name)}")
        if self.event_loop not in ("asyncio", "uvloop"):
            raise SettingsError(f"{ENV_PREFIX}EVENT_LOOP: must be asyncio or uvloop, got {self.event_loop!r}")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"{ENV_PREFIX}METRICS_PORT: must be a port number, got {self.metrics_port}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> StreamSettings:
        """Settings from ``env`` (default ``os.environ``); keyword overrides win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or f.name in overrides:
                continue
            kind = _CONVERTERS[str(f.type)]
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise SettingsError(f"{ENV_PREFIX}{f.name.upper()}: expected {f.type}, got {raw!r}") from None
        values.update(overrides)
        return cls(**values)

    @property
    def broker_url(self) -> str:
        """Faust's broker URL form (``kafka://host:port;host:port``)."""
        return ";".join(f"kafka://{h.strip()}" for h in self.kafka_bootstrap.split(",") if h.strip())

    def topics(self) -> dict[str, int]:
        """Source and output topics with the partition counts to create them with."""
        return {
            self.topic_impressions: self.partitions,
            self.topic_interactions: self.partitions,
            self.topic_examples: self.partitions,
            self.topic_deadletter: self.partitions,
        }
