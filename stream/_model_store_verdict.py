"""The promotion gate's decision on one model version, as the store keeps it.

Why in the store: ops ask "why is version 42 not serving?" and the answer
must be where the versions are (``smarttrip models list`` / ``history``), not
in a log line. The gate (:mod:`stream.promotion_gate`) writes one verdict per
version it decided on, under ``<prefix>decision:<n>`` (see
:mod:`stream._model_store_records`), with the DECIDE script of
:mod:`stream._model_store_lua`; it is deleted with the version's bytes.

``decision`` is ``promote`` (the version serves), ``hold`` (the gate found it
worse than the champion beyond the margin: it never serves) or ``pending``
(not enough evidence yet; re-evaluated as logged traffic accumulates).
``source`` is ``gate`` or ``ops`` (``smarttrip models promote``). ``details``
carries the evidence: estimator, n, the candidate's and the champion's
estimates with their intervals, the paired difference and its interval, the
margin — flat JSON scalars so any reader can show them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from stream._model_store_errors import CorruptRecord, ModelInputError

__all__ = ["DECISIONS", "Decision", "GateVerdict", "decode_verdict", "encode_verdict"]

Decision = Literal["promote", "hold", "pending"]
DECISIONS: Final[tuple[Decision, ...]] = get_args(Decision)
Scalar = float | int | str | None
_SOURCES: Final = ("gate", "ops")


@dataclass(frozen=True)
class GateVerdict:
    """One decision of the gate (or of ops) on one version.

    >>> v = GateVerdict("hold", "worse than the rules policy", 1.7e9, champion_version=None,
    ...                 details={"estimator": "snipw", "diff": -0.031})
    >>> decode_verdict(encode_verdict(v)) == v
    True
    """

    decision: Decision
    reason: str
    at: float
    champion_version: int | None = None  # None: the champion was the rules policy
    source: str = "gate"
    details: dict[str, Scalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ModelInputError("decision", f"must be one of {list(DECISIONS)}, got {self.decision!r}")
        if not isinstance(self.reason, str) or not 0 < len(self.reason) <= 1000:
            raise ModelInputError("reason", "must be a non-empty string of at most 1000 characters")
        if self.source not in _SOURCES:
            raise ModelInputError("source", f"must be one of {list(_SOURCES)}, got {self.source!r}")
        for name, value in self.details.items():
            ok = value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ModelInputError(
                    f"details.{name}", f"must be a finite number, a string or null, got {value!r}"
                )


def encode_verdict(verdict: GateVerdict) -> str:
    body = {
        "decision": verdict.decision,
        "reason": verdict.reason,
        "at": verdict.at,
        "champion_version": verdict.champion_version,
        "source": verdict.source,
        "details": verdict.details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)


def decode_verdict(raw: bytes | str) -> GateVerdict:
    """Parse a stored verdict; :class:`CorruptRecord` if it is not one."""
    try:
        body = json.loads(raw)
        if not isinstance(body, Mapping) or not isinstance(body.get("details", {}), Mapping):
            raise TypeError("not a JSON object")
        champion = body.get("champion_version")
        return GateVerdict(
            decision=body["decision"],
            reason=body["reason"],
            at=float(body["at"]),
            champion_version=None if champion is None else int(champion),
            source=body.get("source", "gate"),
            details=dict(body.get("details", {})),
        )
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptRecord(f"decision: not a gate verdict ({exc})") from None
