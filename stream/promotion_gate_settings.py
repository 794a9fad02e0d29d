"""Settings of the promotion gate (``SMARTTRIP_GATE_*``), re-exported by :mod:`stream.promotion_gate`.

See :mod:`stream.promotion_gate` for what each one does; the decision rule's
own settings are :class:`bandit.promotion.GateRule` (validated there, each
error naming its field).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bandit.promotion import GATE_ESTIMATORS, GateRule

__all__ = ["GateSettings", "GateSettingsError"]

_PREFIX = "SMARTTRIP_GATE_"


class GateSettingsError(ValueError):
    """A gate setting is invalid; the message names the variable."""


@dataclass(frozen=True)
class GateSettings:
    """The gate's rule plus how much traffic it keeps and how often it runs."""

    rule: GateRule = field(default_factory=lambda: GateRule(estimator="dr", clip=10.0))
    window: int = 20_000
    interval_s: float = 10.0
    shadow_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise GateSettingsError(f"{_PREFIX}WINDOW: must be an integer >= 1, got {self.window!r}")
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise GateSettingsError(f"{_PREFIX}INTERVAL_S: must be a number > 0, got {self.interval_s!r}")
        if not (math.isfinite(self.shadow_wait_s) and self.shadow_wait_s >= 0):
            raise GateSettingsError(
                f"{_PREFIX}SHADOW_WAIT_S: must be a number >= 0, got {self.shadow_wait_s!r}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GateSettings:
        """Settings from ``SMARTTRIP_GATE_*`` variables (see the module docstring).

        >>> s = GateSettings.from_env({"SMARTTRIP_GATE_MARGIN": "0.01", "SMARTTRIP_GATE_CLIP": "0"})
        >>> s.rule.estimator, s.rule.margin, s.rule.clip, s.window
        ('dr', 0.01, None, 20000)
        """
        env = os.environ if env is None else env
        base = cls()

        def num(name: str, default: float) -> float:
            raw = env.get(_PREFIX + name)
            try:
                return default if raw is None else float(raw)
            except ValueError:
                raise GateSettingsError(f"{_PREFIX}{name}: expected a number, got {raw!r}") from None

        def whole(name: str, default: int) -> int:
            raw = env.get(_PREFIX + name)
            if raw is None:
                return default
            if not raw.strip().isdigit():
                raise GateSettingsError(f"{_PREFIX}{name}: expected an integer >= 0, got {raw!r}")
            return int(raw)

        estimator = env.get(_PREFIX + "ESTIMATOR", base.rule.estimator)
        if estimator not in GATE_ESTIMATORS:
            raise GateSettingsError(
                f"{_PREFIX}ESTIMATOR: must be one of {list(GATE_ESTIMATORS)}, got {estimator!r}"
            )
        clip = num("CLIP", base.rule.clip or 0.0)
        try:
            rule = replace(
                base.rule,
                estimator=estimator,
                margin=num("MARGIN", base.rule.margin),
                min_examples=whole("MIN_EXAMPLES", base.rule.min_examples),
                min_ess=num("MIN_ESS", base.rule.min_ess),
                epsilon=num("EPSILON", base.rule.epsilon),
                clip=None if clip == 0 else clip,
            )
        except GateSettingsError:
            raise
        except ValueError as exc:  # OPEInputError names the field
            name, _, problem = str(exc).partition(": ")
            raise GateSettingsError(f"{_PREFIX}{name.upper()}: {problem}") from None
        return cls(
            rule=rule,
            window=whole("WINDOW", base.window),
            interval_s=num("INTERVAL_S", base.interval_s),
            shadow_wait_s=num("SHADOW_WAIT_S", base.shadow_wait_s),
        )
