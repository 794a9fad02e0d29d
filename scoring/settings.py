"""Scoring-worker settings, read once from ``SMARTTRIP_*`` environment variables.

=================================  ==========================================  ==========================
variable                           meaning                                     default
=================================  ==========================================  ==========================
SMARTTRIP_SERVE_HOST               address to listen on                        127.0.0.1
SMARTTRIP_SERVE_PORT               port to listen on (0 = any free port)       8080
SMARTTRIP_SERVE_WORKERS            worker processes sharing the port           1
SMARTTRIP_METRICS_PORT             worker i also listens on this + i (0 = no)  0
SMARTTRIP_API_TOKENS               bearer tokens for rank/events/metrics       (required; comma-separated)
SMARTTRIP_ADMIN_TOKENS             bearer tokens for /v1/admin/* (and all)     (required; comma-separated)
SMARTTRIP_PSEUDONYM_KEY            secret key of the user-id keyed hash        (required; >= 16 bytes)
SMARTTRIP_CATALOG_SOURCE           file (SMARTTRIP_CATALOG or synthetic) or    file
                                   redis (the catalog store, live updates)
SMARTTRIP_CATALOG                  catalog file (.jsonl/.csv)                  (none)
SMARTTRIP_SYNTHETIC_TRIPS          synthetic catalog size when no file         0 (= no catalog: not ready)
SMARTTRIP_SYNTHETIC_SEED           seed of the synthetic catalog               0
SMARTTRIP_REDIS_URL                the model store                             redis://127.0.0.1:6379/0
SMARTTRIP_MODEL_NAMESPACE          key prefix of the model store               smarttrip
SMARTTRIP_MODEL_POLL_S             fallback poll of models and experiment      2
SMARTTRIP_MODEL_MIN_SWAP_S         least time between two loads of one model   1 (0 = every version)
SMARTTRIP_MODEL_SERVE              current: pin, else the learner's latest;   current
                                   promoted: pin, else what the promotion
                                   gate promoted, else the rules policy
SMARTTRIP_SHADOW_SAMPLE            with MODEL_SERVE=promoted: share of         0.1
                                   requests also scored by the unpromoted
                                   candidate (logged, never served; 0 = off)
SMARTTRIP_GLOBAL_MIN_EXAMPLES      below this many segment examples, serve    200
                                   the policy's global model (if a global
                                   learner runs; bandit.segments)
SMARTTRIP_GLOBAL_SHRINKAGE         n0 of the blend w = n / (n + n0)            1000
SMARTTRIP_REDIS_TIMEOUT_S          Redis socket timeout                        1
SMARTTRIP_KAFKA_BOOTSTRAP          broker host:port list                       127.0.0.1:9092
SMARTTRIP_TOPIC_IMPRESSIONS        impressions topic                           impressions
SMARTTRIP_TOPIC_INTERACTIONS       interactions topic                          interactions
SMARTTRIP_SPOOL_DIR                where records spool while Kafka is away     ./smarttrip-spool
SMARTTRIP_SPOOL_MAX_BYTES          disk bound of the spool (then: drop, loud)  1073741824 (1 GiB)
SMARTTRIP_LOG_QUEUE                in-memory queue of records to produce       20000
SMARTTRIP_KAFKA_STALL_S            unacked this long = broker unreachable      1.0
SMARTTRIP_MAX_BODY_BYTES           request body limit                          262144
SMARTTRIP_MAX_K                    largest k                                   100
SMARTTRIP_MAX_CANDIDATES           most trip_ids per rank request              1000
SMARTTRIP_MAX_EVENTS               most events per /v1/events batch            500
SMARTTRIP_RATE_LIMIT_RPS           requests/s per client (token bucket; 0=off) 1000
SMARTTRIP_RATE_LIMIT_BURST         bucket size: requests a client may burst    2000
SMARTTRIP_EXPLORATION_SEED         mixed into every request's RNG seed         0
SMARTTRIP_EXPERIMENT               initial experiment (JSON) if Redis has none (see scoring.experiment)
=================================  ==========================================  ==========================

Tokens and the pseudonym key are secrets: they are never logged, and
:meth:`ServeSettings.__repr__` hides them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from scoring.errors import SettingsError

__all__ = ["ENV_PREFIX", "ServeSettings", "SettingsError"]

ENV_PREFIX = "SMARTTRIP_"
_SECRETS = frozenset({"api_tokens", "admin_tokens", "pseudonym_key"})
_MIN_KEY_BYTES = 16
_MIN_TOKEN_CHARS = 16


def _tokens(raw: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in raw.split(",") if t.strip())


@dataclass(frozen=True)
class ServeSettings:
    """Everything the scoring worker reads from its environment (see the module table)."""

    api_tokens: tuple[str, ...]
    admin_tokens: tuple[str, ...]
    pseudonym_key: bytes
    serve_host: str = "127.0.0.1"
    serve_port: int = 8080
    serve_workers: int = 1
    metrics_port: int = 0
    catalog_source: str = "file"
    catalog: str = ""
    synthetic_trips: int = 0
    synthetic_seed: int = 0
    redis_url: str = "redis://127.0.0.1:6379/0"
    model_namespace: str = "smarttrip"
    model_poll_s: float = 2.0
    model_min_swap_s: float = 1.0
    model_serve: str = "current"
    shadow_sample: float = 0.1
    global_min_examples: int = 200
    global_shrinkage: float = 1000.0
    redis_timeout_s: float = 1.0
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_impressions: str = "impressions"
    topic_interactions: str = "interactions"
    spool_dir: str = "./smarttrip-spool"
    spool_max_bytes: int = 1 << 30
    log_queue: int = 20_000
    kafka_stall_s: float = 1.0
    max_body_bytes: int = 256 * 1024
    max_k: int = 100
    max_candidates: int = 1000
    max_events: int = 500
    rate_limit_rps: float = 1000.0
    rate_limit_burst: int = 2000
    exploration_seed: int = 0
    experiment: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.api_tokens:
            raise SettingsError(f"{ENV_PREFIX}API_TOKENS: at least one token is required")
        if not self.admin_tokens:
            raise SettingsError(f"{ENV_PREFIX}ADMIN_TOKENS: at least one token is required")
        for name in ("api_tokens", "admin_tokens"):
            for token in getattr(self, name):
                if len(token) < _MIN_TOKEN_CHARS or any(c.isspace() for c in token):
                    raise SettingsError(
                        f"{ENV_PREFIX}{name.upper()}: every token must be >= {_MIN_TOKEN_CHARS} "
                        "characters without whitespace"
                    )
        if set(self.api_tokens) & set(self.admin_tokens):
            raise SettingsError(f"{ENV_PREFIX}ADMIN_TOKENS: must differ from every API token")
        if len(self.pseudonym_key) < _MIN_KEY_BYTES or len(self.pseudonym_key) > 64:
            raise SettingsError(f"{ENV_PREFIX}PSEUDONYM_KEY: must be 16 to 64 bytes")
        if not 0 <= self.serve_port <= 65535:
            raise SettingsError(f"{ENV_PREFIX}SERVE_PORT: must be a port number, got {self.serve_port}")
        positive_ints = (
            "log_queue",
            "max_body_bytes",
            "max_k",
            "max_candidates",
            "max_events",
            "spool_max_bytes",
            "rate_limit_burst",
        )
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be >= 1, got {getattr(self, name)}")
        for name in ("model_poll_s", "redis_timeout_s", "kafka_stall_s"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be > 0, got {getattr(self, name)}")
        if not 0 <= self.rate_limit_rps < float("inf"):
            raise SettingsError(
                f"{ENV_PREFIX}RATE_LIMIT_RPS: must be >= 0 (0 = off), got {self.rate_limit_rps}"
            )
        if not 0 <= self.model_min_swap_s <= 3600:
            raise SettingsError(
                f"{ENV_PREFIX}MODEL_MIN_SWAP_S: must be in [0, 3600], got {self.model_min_swap_s}"
            )
        if not 1 <= self.serve_workers <= 64:
            raise SettingsError(f"{ENV_PREFIX}SERVE_WORKERS: must be 1 to 64, got {self.serve_workers}")
        if not 0 <= self.metrics_port <= 65535 - self.serve_workers:
            raise SettingsError(f"{ENV_PREFIX}METRICS_PORT: must be a port number, got {self.metrics_port}")
        if self.catalog_source not in ("file", "redis"):
            raise SettingsError(
                f"{ENV_PREFIX}CATALOG_SOURCE: must be file or redis, got {self.catalog_source!r}"
            )
        if self.model_serve not in ("current", "promoted"):
            raise SettingsError(
                f"{ENV_PREFIX}MODEL_SERVE: must be current or promoted, got {self.model_serve!r}"
            )
        if not 0 <= self.shadow_sample <= 1:
            raise SettingsError(f"{ENV_PREFIX}SHADOW_SAMPLE: must be in [0, 1], got {self.shadow_sample}")
        if self.global_min_examples < 0 or not 0 <= self.global_shrinkage < float("inf"):
            raise SettingsError(
                f"{ENV_PREFIX}GLOBAL_MIN_EXAMPLES/_SHRINKAGE: must be >= 0, got "
                f"{self.global_min_examples}/{self.global_shrinkage}"
            )
        if self.synthetic_trips < 0:
            raise SettingsError(f"{ENV_PREFIX}SYNTHETIC_TRIPS: must be >= 0, got {self.synthetic_trips}")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}=***" if f.name in _SECRETS else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.repr
        )
        return f"ServeSettings({shown})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServeSettings:
        """Settings from ``env`` (default ``os.environ``); keyword overrides win.

        >>> s = ServeSettings.from_env({"SMARTTRIP_API_TOKENS": "a" * 16, "SMARTTRIP_ADMIN_TOKENS": "b" * 16,
        ...                             "SMARTTRIP_PSEUDONYM_KEY": "k" * 16, "SMARTTRIP_MAX_K": "20"})
        >>> s.max_k, s.api_tokens == ("a" * 16,), "aaaa" in repr(s)
        (20, True, False)
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = ENV_PREFIX + f.name.upper()
            raw = env.get(var)
            if raw is None or f.name in overrides:
                continue
            kind = str(f.type)
            try:
                if kind == "tuple[str, ...]":
                    values[f.name] = _tokens(raw)
                elif kind == "bytes":
                    values[f.name] = raw.encode("utf-8")
                elif kind == "int":
                    values[f.name] = int(raw)
                elif kind == "float":
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise SettingsError(f"{var}: expected {kind}, got {raw!r}") from None
        values.update(overrides)
        for name in ("api_tokens", "admin_tokens", "pseudonym_key"):
            if name not in values:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()}: required")
        return cls(**values)

    def with_overrides(self, **changes: Any) -> ServeSettings:
        """A copy with some fields changed (validated again)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return ServeSettings(**{**current, **changes})
