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
SMARTTRIP_LOG_EPOCH                id of the examples log the offsets refer   auto
                                   to (auto: the topic's id; stream.log_epoch)
SMARTTRIP_EXAMPLES_PER_RECORD      join: slate = a closed slate's examples    slate
                                   in one record; one = a record per example
                                   (learners read both; stream.example_bytes)
SMARTTRIP_LEARNER_FAST             learner: compiled loops, light decoding    1
                                   (same models; 0 = reference path)
SMARTTRIP_LEARN_SCOPE              segment: a model per segment; global: one   segment
                                   model per policy from every partition,
                                   stored as segment "_all" (bandit.segments)
SMARTTRIP_DEDUPE_HORIZON_S         learner: event-time seconds an example id  120
                                   is remembered to drop re-emitted duplicates
                                   (half to all of it; stream.recent_ids)
SMARTTRIP_TRIPS_PARTITIONS         partitions of the compacted trips topic    1
SMARTTRIP_CATALOG_INTERVAL_S       catalog agent: least time between versions 1
SMARTTRIP_CATALOG_HISTORY          catalog versions kept in Redis             5
SMARTTRIP_TRAFFIC_FILTER           bot rules in the join (1 on, 0 off)        1
SMARTTRIP_BOT_MIN_CLICK_GAP_S      a click this soon after the last is fast   0.25
SMARTTRIP_BOT_MAX_FAST_CLICKS      fast clicks a session may have             8
SMARTTRIP_BOT_MAX_CLICKS_PER_SLATE distinct clicked trips one slate may have  8
SMARTTRIP_BOT_MAX_CLICKED_SLATE_SHARE  share of slates clicked that flags ... 0.95
SMARTTRIP_BOT_MIN_SLATES_FOR_SHARE ... once the session has this many slates  10
SMARTTRIP_BOT_MAX_SESSION_S        longest plausible session (event time)     14400
SMARTTRIP_BOT_MAX_SLATES           most slates a session may show             500
SMARTTRIP_BOT_STATE_TTL_S          idle time after which a session is forgot  3600
SMARTTRIP_USER_CAP_EXAMPLES        examples per user per window (0 = no cap)  2000
SMARTTRIP_USER_CAP_WINDOW_S        the cap's window (event time)              3600
SMARTTRIP_DRIFT_DELTA              ADWIN confidence δ (smaller: fewer alarms) 0.05
SMARTTRIP_DRIFT_RESPONSE           act on loss drift (1) or only report (0)   1
SMARTTRIP_DRIFT_MIN_EXAMPLES       no response before a model saw this many   2000
SMARTTRIP_DRIFT_COOLDOWN           examples between two responses of a model  5000
SMARTTRIP_DRIFT_LINUCB_KEEP        LinUCB: share of evidence kept at a drift  0.1
SMARTTRIP_DRIFT_MIN_CHANGE         smallest relative change that is answered  0.1
=================================  =========================================  ===========

Topic names: SMARTTRIP_TOPIC_IMPRESSIONS, _INTERACTIONS, _EXAMPLES, _DEADLETTER, _TRIPS.
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
    log_epoch: str = "auto"
    examples_per_record: str = "slate"
    learner_fast: int = 1
    learn_scope: str = "segment"
    dedupe_horizon_s: float = 120.0
    traffic_filter: int = 1
    bot_min_click_gap_s: float = 0.25
    bot_max_fast_clicks: int = 8
    bot_max_clicks_per_slate: int = 8
    bot_max_clicked_slate_share: float = 0.95
    bot_min_slates_for_share: int = 10
    bot_max_session_s: float = 14400.0
    bot_max_slates: int = 500
    bot_state_ttl_s: float = 3600.0
    user_cap_examples: int = 2000
    user_cap_window_s: float = 3600.0
    drift_delta: float = 0.05
    drift_response: int = 1
    drift_min_examples: int = 2000
    drift_cooldown: int = 5000
    drift_linucb_keep: float = 0.1
    drift_min_change: float = 0.1
    topic_impressions: str = "impressions"
    topic_interactions: str = "interactions"
    topic_examples: str = "examples"
    topic_deadletter: str = "deadletter"
    topic_trips: str = "trips"
    trips_partitions: int = 1
    catalog_interval_s: float = 1.0
    catalog_history: int = 5

    def __post_init__(self) -> None:
        for name in ("partitions", "batch_size", "publish_every_n", "trips_partitions", "catalog_history",
                     "fetch_bytes", "stream_buffer", "producer_batch_bytes"):  # fmt: skip
            if getattr(self, name) < 1:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be >= 1, got {getattr(self, name)}")
        for name in (
            "session_timeout_s",
            "heartbeat_s",
            "join_window_s",
            "batch_within_s",
            "publish_interval_s",
            "catalog_interval_s",
            "dedupe_horizon_s",
        ):
            if not 0 < getattr(self, name) < float("inf"):
                raise SettingsError(
                    f"{ENV_PREFIX}{name.upper()}: must be > 0 (and finite), got {getattr(self, name)}"
                )
        self._check_quality()
        if self.learn_scope not in ("segment", "global"):
            raise SettingsError(
                f"{ENV_PREFIX}LEARN_SCOPE: must be segment or global, got {self.learn_scope!r}"
            )
        if self.examples_per_record not in ("slate", "one"):
            raise SettingsError(
                f"{ENV_PREFIX}EXAMPLES_PER_RECORD: must be slate or one, got {self.examples_per_record!r}"
            )
        if self.event_loop not in ("asyncio", "uvloop"):
            raise SettingsError(f"{ENV_PREFIX}EVENT_LOOP: must be asyncio or uvloop, got {self.event_loop!r}")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"{ENV_PREFIX}METRICS_PORT: must be a port number, got {self.metrics_port}")

    def _check_quality(self) -> None:
        for name in ("traffic_filter", "drift_response", "learner_fast"):
            if getattr(self, name) not in (0, 1):
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be 0 or 1, got {getattr(self, name)}")
        for name in (
            "bot_max_fast_clicks",
            "bot_max_clicks_per_slate",
            "bot_min_slates_for_share",
            "bot_max_slates",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be >= 1, got {getattr(self, name)}")
        for name in ("user_cap_examples", "drift_min_examples", "drift_cooldown"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be >= 0, got {getattr(self, name)}")
        for name in ("bot_max_session_s", "bot_state_ttl_s", "user_cap_window_s"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be > 0, got {getattr(self, name)}")
        if not self.bot_min_click_gap_s >= 0:
            raise SettingsError(
                f"{ENV_PREFIX}BOT_MIN_CLICK_GAP_S: must be >= 0, got {self.bot_min_click_gap_s}"
            )
        for name in ("bot_max_clicked_slate_share", "drift_linucb_keep"):
            if not 0 < getattr(self, name) <= 1:
                raise SettingsError(
                    f"{ENV_PREFIX}{name.upper()}: must be in (0, 1], got {getattr(self, name)}"
                )
        if not self.drift_min_change >= 0:
            raise SettingsError(f"{ENV_PREFIX}DRIFT_MIN_CHANGE: must be >= 0, got {self.drift_min_change}")
        if not 0 < self.drift_delta < 1:
            raise SettingsError(f"{ENV_PREFIX}DRIFT_DELTA: must be in (0, 1), got {self.drift_delta}")
        live = self.join_window_s + self.allowed_lateness_s + self.watermark_delay_s
        if self.traffic_filter and self.bot_state_ttl_s < live:
            raise SettingsError(
                f"{ENV_PREFIX}BOT_STATE_TTL_S: must be >= join window + allowed lateness + watermark delay "
                f"({live:g} s) so a verdict outlives the session's examples, got {self.bot_state_ttl_s:g}"
            )

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
            self.topic_trips: self.trips_partitions,
        }

    def topic_configs(self) -> dict[str, dict[str, str]]:
        """Topic-level configs to create topics with: ``trips`` is compacted (latest record per trip_id)."""
        return {self.topic_trips: {"cleanup.policy": "compact"}}
