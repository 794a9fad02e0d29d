"""The simulator's configuration: a JSON document, validated field by field.

Schema (every key optional; defaults in :class:`SimConfig`)::

    {
      "seed": 0,
      "catalog": {"trips": 1500, "seed": 0},
      "users": {"count": 3000},
      "taste": {"<segment>": {"<φ feature>": logit, ...}, ...},   # merged over DEFAULT_TASTE
      "appeal_scale": 2.0,          # logit weight of a trip's latent appeal (seen only through POPULARITY)
      "appeal_noise": 0.3,          # sd of the part of appeal no feature reveals
      "position_bias": {"eta": 1.0},          # examination(pos) = (1 / (1 + pos)) ** eta
      "conversion": {"save": 0.15, "booking_start": 0.05},   # given a click
      "session": {"requests": 3, "think_time_s": 0.0,    # a session's next request waits for the previous + think time
                  "dwell_s": 0.0},     # a click happens U(0, dwell_s) after its slate was received
      "drift": {"at_fraction": 0.5, "taste": {...}} | null,  # tastes change midway
      "traffic": {"rate_rps": 40, "duration_s": 180, "k": 10, "concurrency": 8}
    }
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from features.context import SEGMENTS
from features.phi import PHI_NAMES

__all__ = ["DEFAULT_TASTE", "ConfigError", "SimConfig", "load_config"]

#: Each segment's true click logits over φ: unlike the rules, price matters a lot,
#: departure status hardly at all, and segments differ.
DEFAULT_TASTE: dict[str, dict[str, float]] = {
    "adventure": {"BASE_SCORE": -3.0, "THEME_FULL": 1.6, "THEME_PARTIAL": 0.8, "THEME_PENALTY": -1.2,
                  "DIFFICULTY_PERFECT": 1.2, "DURATION_IDEAL": 0.4, "PRICE_GAP": -0.6, "GEO_DIRECT_COUNTRY": 0.5},
    "luxury": {"BASE_SCORE": -3.2, "THEME_FULL": 1.0, "THEME_PARTIAL": 0.5, "STATUS_GUARANTEED": 0.8,
               "DURATION_IDEAL": 0.8, "GEO_DIRECT_COUNTRY": 1.2, "GEO_CONTINENT": 0.4, "PRICE_GAP": 0.3},
    "budget": {"BASE_SCORE": -3.0, "BUDGET_PERFECT": 1.5, "BUDGET_GOOD": 0.2, "BUDGET_ACCEPTABLE": -0.5,
               "PRICE_GAP": -2.0, "THEME_FULL": 0.8, "THEME_PARTIAL": 0.4, "DEPARTING_SOON": 0.6},
    "culture": {"BASE_SCORE": -3.1, "THEME_FULL": 2.0, "THEME_PARTIAL": 1.0, "THEME_PENALTY": -1.5,
                "GEO_DIRECT_COUNTRY": 1.0, "GEO_CONTINENT": 0.5, "DURATION_IDEAL": 0.5, "PRICE_GAP": -0.8},
    "general": {"BASE_SCORE": -3.0, "THEME_FULL": 1.0, "THEME_PARTIAL": 0.5, "BUDGET_PERFECT": 0.8,
                "PRICE_GAP": -1.0, "DURATION_IDEAL": 0.6, "GEO_DIRECT_COUNTRY": 0.6},
}  # fmt: skip


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    catalog_trips: int = 1500
    catalog_seed: int = 0
    users: int = 3000
    taste: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_TASTE)
    appeal_scale: float = 2.0
    appeal_noise: float = 0.3
    eta: float = 1.0
    save_p: float = 0.15
    booking_p: float = 0.05
    requests_per_session: int = 3
    think_time_s: float = 0.0
    dwell_s: float = 0.0
    drift_at_fraction: float | None = None
    drift_taste: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    rate_rps: float = 40.0
    duration_s: float = 180.0
    k: int = 10
    concurrency: int = 8

    def __post_init__(self) -> None:
        for seg, weights in {**self.taste, **self.drift_taste}.items():
            if seg not in SEGMENTS:
                raise ConfigError(f"taste.{seg}: unknown segment; expected one of {list(SEGMENTS)}")
            for name, value in weights.items():
                if name not in PHI_NAMES:
                    raise ConfigError(f"taste.{seg}.{name}: unknown feature")
                if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                    raise ConfigError(f"taste.{seg}.{name}: must be a finite number")
        positive = {"catalog_trips": self.catalog_trips, "users": self.users, "rate_rps": self.rate_rps,
                    "duration_s": self.duration_s, "k": self.k, "concurrency": self.concurrency,
                    "requests_per_session": self.requests_per_session}  # fmt: skip
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{name}: must be > 0, got {value}")
        for name, p in (("conversion.save", self.save_p), ("conversion.booking_start", self.booking_p)):
            if not 0 <= p <= 1:
                raise ConfigError(f"{name}: must be in [0, 1], got {p}")
        if not self.think_time_s >= 0:
            raise ConfigError(f"session.think_time_s: must be >= 0, got {self.think_time_s}")
        if not (math.isfinite(self.dwell_s) and self.dwell_s >= 0):
            raise ConfigError(f"session.dwell_s: must be a finite number >= 0, got {self.dwell_s}")
        if self.eta < 0:
            raise ConfigError(f"position_bias.eta: must be >= 0, got {self.eta}")
        if self.drift_at_fraction is not None and not 0 < self.drift_at_fraction < 1:
            raise ConfigError(f"drift.at_fraction: must be in (0, 1), got {self.drift_at_fraction}")

    def with_overrides(self, **changes: Any) -> SimConfig:
        return replace(self, **changes)


def _get(obj: Mapping[str, Any], key: str, kind: type, default: Any, path: str) -> Any:
    value = obj.get(key, default)
    if value is default:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{path}{key}: must be {kind.__name__}, got {type(value).__name__}")
    return value


def load_config(raw: Mapping[str, Any] | str | Path | None = None) -> SimConfig:
    """A :class:`SimConfig` from a dict, a JSON file path, or None (defaults)."""
    if raw is None:
        return SimConfig()
    if isinstance(raw, str | Path):
        try:
            raw = json.loads(Path(raw).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{raw}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, Mapping):
        raise ConfigError("config: must be a JSON object")
    known = {"seed", "catalog", "users", "taste", "appeal_scale", "appeal_noise", "position_bias",
             "conversion", "session", "drift", "traffic"}  # fmt: skip
    for key in raw:
        if key not in known:
            raise ConfigError(f"{key}: unknown configuration key")
    d = SimConfig()
    cat, users = raw.get("catalog", {}), raw.get("users", {})
    pb, conv, sess = raw.get("position_bias", {}), raw.get("conversion", {}), raw.get("session", {})
    drift, traffic = raw.get("drift"), raw.get("traffic", {})
    taste = {s: dict(w) for s, w in DEFAULT_TASTE.items()}
    for seg, weights in raw.get("taste", {}).items():
        taste.setdefault(seg, {}).update(weights)
    return SimConfig(
        seed=_get(raw, "seed", int, d.seed, ""),
        catalog_trips=_get(cat, "trips", int, d.catalog_trips, "catalog."),
        catalog_seed=_get(cat, "seed", int, d.catalog_seed, "catalog."),
        users=_get(users, "count", int, d.users, "users."),
        taste=taste,
        appeal_scale=_get(raw, "appeal_scale", float, d.appeal_scale, ""),
        appeal_noise=_get(raw, "appeal_noise", float, d.appeal_noise, ""),
        eta=_get(pb, "eta", float, d.eta, "position_bias."),
        save_p=_get(conv, "save", float, d.save_p, "conversion."),
        booking_p=_get(conv, "booking_start", float, d.booking_p, "conversion."),
        requests_per_session=_get(sess, "requests", int, d.requests_per_session, "session."),
        think_time_s=_get(sess, "think_time_s", float, d.think_time_s, "session."),
        dwell_s=_get(sess, "dwell_s", float, d.dwell_s, "session."),
        drift_at_fraction=None if drift is None else _get(drift, "at_fraction", float, 0.5, "drift."),
        drift_taste={} if drift is None else {s: dict(w) for s, w in drift.get("taste", {}).items()},
        rate_rps=_get(traffic, "rate_rps", float, d.rate_rps, "traffic."),
        duration_s=_get(traffic, "duration_s", float, d.duration_s, "traffic."),
        k=_get(traffic, "k", int, d.k, "traffic."),
        concurrency=_get(traffic, "concurrency", int, d.concurrency, "traffic."),
    )
