"""The promoted pointer: which version the promotion gate lets serve, and why.

Why a second pointer: ``current`` is the learner's latest version and moves
every few seconds; with the gate on (:mod:`stream.promotion_gate`) live
traffic is served by ``promoted`` instead, which moves only when a candidate
passed the off-policy check (or ops promoted one by hand). What serves with
the gate on (:meth:`PromotionOps.serving_gated`): the pinned version, else
the promoted one, else nothing (:class:`NotPromoted`: the scoring worker then
serves the rules policy). The gate off keeps the original rule (pin, else
current; :meth:`stream.model_store.ModelStore.serving`).

Every change is one DECIDE script (:mod:`stream._model_store_lua`): the
verdict and the pointer are written together, a promotion is a compare-and-set
on the previous promoted version, and the PUBLISH, PIN and UNPIN scripts never
trim a promoted version, so what may serve always has its bytes. Mixed into
:class:`stream.model_store.ModelStore`; the async reader has the same gated
read (:meth:`stream.model_store_async.AsyncModelStore.serving`).
"""

from __future__ import annotations

from typing import Any

import redis

from stream._model_store_errors import (
    ModelInputError,
    ModelStoreError,
    NotPromoted,
    UnknownModel,
    UnknownVersion,
    VersionConflict,
    redis_errors,
)
from stream._model_store_records import (
    ModelKeys,
    ModelRecord,
    check_version,
    notice_head,
    opt_int,
    text,
)
from stream._model_store_verdict import GateVerdict, decode_verdict, encode_verdict

__all__ = ["PromotionConflict", "PromotionOps", "gated_version"]


class PromotionConflict(VersionConflict):
    """A promotion expected another promoted version than the one found (another gate moved it)."""

    def __init__(self, policy: str, segment: str, *, expected: int, actual: int) -> None:
        ModelStoreError.__init__(
            self, f"{policy}/{segment}: expected promoted version {expected} (0 = none), found {actual}"
        )
        self.policy, self.segment, self.expected, self.actual = policy, segment, expected, actual


def gated_version(policy: str, segment: str, current: Any, pin: Any, promoted: Any) -> int:
    """The version to serve with the gate on, from the raw ``current``, ``pin`` and ``promoted`` values."""
    if current is None:
        raise UnknownModel(policy, segment)
    pinned, chosen = opt_int(pin), opt_int(promoted)
    if pinned is not None:
        return pinned
    if chosen is None:
        raise NotPromoted(policy, segment)
    return chosen


class PromotionOps:
    """Gate decisions and the promoted pointer (mixed into ``ModelStore``)."""

    client: redis.Redis
    namespace: str
    _decide: Any
    _nominate: Any

    def keys(self, policy: str, segment: str) -> ModelKeys:  # provided by StoreInspection
        raise NotImplementedError

    def _read_record(self, keys: ModelKeys, which: str) -> ModelRecord:  # provided by ModelStore
        raise NotImplementedError

    def promote(
        self,
        policy: str,
        segment: str,
        version: int,
        verdict: GateVerdict,
        *,
        expected_promoted: int | None = None,
    ) -> int | None:
        """Make ``version`` the promoted one with its verdict; returns the previous promoted version.

        ``expected_promoted`` (0 = none yet) makes it conditional:
        :class:`PromotionConflict` if another version is promoted now.
        ``verdict.decision`` must be ``promote``.
        """
        if verdict.decision != "promote":
            raise ModelInputError(
                "verdict.decision", f"must be 'promote' to promote, got {verdict.decision!r}"
            )
        if expected_promoted is not None:
            check_version("expected_promoted", expected_promoted, low=0)
        reply = self._run_decide(policy, segment, version, verdict, expected_promoted)
        return opt_int(reply[2])

    def record_verdict(self, policy: str, segment: str, version: int, verdict: GateVerdict) -> None:
        """Record a ``hold`` or ``pending`` verdict on ``version`` (the promoted pointer does not move)."""
        if verdict.decision == "promote":
            raise ModelInputError("verdict.decision", "use promote() to promote a version")
        self._run_decide(policy, segment, version, verdict, None)

    def nominate(self, policy: str, segment: str, version: int | None) -> int | None:
        """Name ``version`` as the one the gate judges (None: clear); returns the previous nominee.

        The scoring workers shadow-score the nominee (:mod:`scoring.shadow`) while it is
        nominated, and it is not trimmed from the store meanwhile.
        """
        keys = self.keys(policy, segment)
        if version is not None:
            check_version("version", version)
        with redis_errors("nominate"):
            reply: list[Any] = self._nominate(
                keys=keys.writes,
                args=[
                    keys.prefix,
                    "" if version is None else str(version),
                    f"{self.namespace}:models",
                    notice_head("nominate", keys),
                ],
            )
        status = text(reply[0])
        if status == "no_model":
            raise UnknownModel(policy, segment)
        if status == "no_version":
            raise UnknownVersion(policy, segment, version or 0)
        return opt_int(reply[2])

    def nominated_version(self, policy: str, segment: str) -> int | None:
        """The version the gate is judging, None if none."""
        keys = self.keys(policy, segment)
        with redis_errors("nominated_version"):
            return opt_int(self.client.get(keys.nominated))

    def verdict(self, policy: str, segment: str, version: int) -> GateVerdict | None:
        """The verdict recorded on ``version``, None if the gate has not decided on it."""
        keys = self.keys(policy, segment)
        with redis_errors("verdict"):
            raw = self.client.get(keys.decision(check_version("version", version)))
        return None if raw is None else decode_verdict(raw)

    def promoted_version(self, policy: str, segment: str) -> int | None:
        """The promoted version, None if none was promoted yet."""
        keys = self.keys(policy, segment)
        with redis_errors("promoted_version"):
            return opt_int(self.client.get(keys.promoted))

    def serving_gated(self, policy: str, segment: str) -> ModelRecord:
        """The record to serve with the gate on: the pin, else the promoted version.

        Raises :class:`NotPromoted` (an :class:`UnknownModel`) when neither exists.
        """
        return self._read_record(self.keys(policy, segment), "gated")

    def serving_gated_version(self, policy: str, segment: str) -> int:
        """The version :meth:`serving_gated` would return, without its bytes."""
        keys = self.keys(policy, segment)
        with redis_errors("serving_gated_version"):
            current, pin, promoted = self.client.mget(keys.reads)
        return gated_version(policy, segment, current, pin, promoted)

    def _run_decide(
        self, policy: str, segment: str, version: int, verdict: GateVerdict, expected: int | None
    ) -> list[Any]:
        keys = self.keys(policy, segment)
        check_version("version", version)
        with redis_errors("decide"):
            reply: list[Any] = self._decide(
                keys=keys.writes,
                args=[
                    keys.prefix,
                    str(version),
                    verdict.decision,
                    "" if expected is None else str(expected),
                    encode_verdict(verdict),
                    f"{self.namespace}:models",  # StoreInspection.channel
                    notice_head("promote", keys),
                ],
            )
        status = text(reply[0])
        if status == "no_model":
            raise UnknownModel(policy, segment)
        if status == "no_version":
            raise UnknownVersion(policy, segment, version)
        if status == "conflict":
            raise PromotionConflict(policy, segment, expected=expected or 0, actual=opt_int(reply[2]) or 0)
        if status != "ok":
            raise ModelStoreError(f"decide: unexpected script reply {status!r}")
        return reply
