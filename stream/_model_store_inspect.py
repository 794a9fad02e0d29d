"""Inspection side of the model store: history, listing, rejection counts, notices.

Why separate: the scoring and learner hot paths need only publish/read
(:mod:`stream.model_store`); ops tools (the ``smarttrip models`` CLI) and tests
also list models, walk a model's history, read the guardrail refusals recorded
in Redis and follow the notice channel. :class:`StoreInspection` is mixed into
:class:`stream.model_store.ModelStore`; it needs the store's ``client`` and
``namespace``, and supplies the key names (``keys()``, ``index_key``, ``channel``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.client

from stream._model_store_errors import (
    CorruptRecord,
    GuardrailError,
    ModelInputError,
    ModelStoreError,
    UnknownModel,
    redis_errors,
)
from stream._model_store_records import (
    ModelKeys,
    ModelNotice,
    ModelSummary,
    VersionInfo,
    decode_meta,
    decode_notice,
    opt_int,
    text,
)
from stream._model_store_verdict import decode_verdict

__all__ = ["Rejections", "StoreInspection"]

_log = logging.getLogger("stream.model_store")


@dataclass(frozen=True)
class Rejections:
    """Guardrail refusals recorded in Redis for one (policy, segment)."""

    counts: dict[str, int]
    last_at: float | None
    last_reasons: list[str]


class StoreInspection:
    """Listing, history, rejections and notices (mixed into ``ModelStore``)."""

    client: redis.Redis
    namespace: str

    @property
    def channel(self) -> str:
        """The pub/sub channel of :class:`ModelNotice` messages."""
        return f"{self.namespace}:models"

    @property
    def index_key(self) -> str:
        """The set of every published ``policy:segment``."""
        return f"{self.namespace}:index"

    def keys(self, policy: str, segment: str) -> ModelKeys:
        """The key names of (policy, segment); validates both names."""
        return ModelKeys(self.namespace, policy, segment)

    def history(self, policy: str, segment: str) -> list[VersionInfo]:
        """Versions that still have their bytes, newest first (the pinned one included)."""
        keys = self.keys(policy, segment)
        with redis_errors("history"):
            pipe = self.client.pipeline(transaction=True)
            pipe.get(keys.current)
            pipe.get(keys.pin)
            pipe.get(keys.promoted)
            pipe.zrevrange(keys.history, 0, -1)
            current_raw, pin_raw, promoted_raw, members = pipe.execute()
            if current_raw is None:
                raise UnknownModel(policy, segment)
            versions = [int(text(m)) for m in members]
            pinned, promoted = opt_int(pin_raw), opt_int(promoted_raw)
            extra = {v for v in (pinned, promoted) if v is not None and v not in versions}
            versions = sorted([*versions, *extra], reverse=True)
            metas = self.client.mget([keys.meta(v) for v in versions]) if versions else []
            verdicts = self.client.mget([keys.decision(v) for v in versions]) if versions else []
        current = int(text(current_raw))
        return [
            VersionInfo(
                version=v,
                meta=decode_meta(m),
                current=v == current,
                pinned=v == pinned,
                promoted=v == promoted,
                verdict=None if d is None else decode_verdict(d),
            )
            for v, m, d in zip(versions, metas, verdicts, strict=True)
            if m is not None
        ]

    def models(self) -> list[ModelSummary]:
        """Every (policy, segment) ever published, sorted, with its current metadata."""
        with redis_errors("models"):
            members = sorted(text(m) for m in self.client.smembers(self.index_key))
            all_keys = [k for k in map(self._member_keys, members) if k is not None]
            pipe = self.client.pipeline(transaction=False)
            for keys in all_keys:
                pipe.mget([*keys.reads, keys.nominated])  # current, pin, promoted, nominated
            heads = pipe.execute()
            pipe = self.client.pipeline(transaction=False)
            for i, keys in enumerate(all_keys):
                current = int(text(heads[i][0] or b"0"))
                nominee = opt_int(heads[i][3]) or 0
                pipe.mget([keys.meta(current), keys.decision(current), keys.decision(nominee)])
            metas = pipe.execute()
        return [
            ModelSummary(
                policy=keys.policy,
                segment=keys.segment,
                current_version=int(text(heads[i][0] or b"0")),
                pinned_version=opt_int(heads[i][1]),
                meta=None if metas[i][0] is None else decode_meta(metas[i][0]),
                promoted_version=opt_int(heads[i][2]),
                verdict=None if metas[i][1] is None else decode_verdict(metas[i][1]),
                nominated_version=opt_int(heads[i][3]),
                nominated_verdict=None if metas[i][2] is None else decode_verdict(metas[i][2]),
            )
            for i, keys in enumerate(all_keys)
        ]

    def rejections(self, policy: str, segment: str) -> Rejections:
        """Guardrail refusals recorded in Redis for (policy, segment), from every process."""
        keys = self.keys(policy, segment)
        with redis_errors("rejections"):
            raw = self.client.hgetall(keys.rejected)
        fields = {text(k): v for k, v in raw.items()}
        last_raw = fields.pop("last", None)
        try:
            last: dict[str, Any] = json.loads(last_raw) if last_raw else {}
            counts = {k: int(text(v)) for k, v in sorted(fields.items())}
        except ValueError as exc:  # JSONDecodeError is a ValueError
            raise CorruptRecord(f"{keys.rejected}: not written by this store ({exc})") from None
        return Rejections(
            counts=counts,
            last_at=last.get("at"),
            last_reasons=list(last.get("reasons", [])),
        )

    def record_rejection(self, keys: ModelKeys, error: GuardrailError, *, at: float) -> None:
        """Count a guardrail refusal in Redis (best effort: a failure is logged, not raised)."""
        last = json.dumps({"at": at, "reasons": error.reasons})
        try:
            with redis_errors("record rejection"):
                pipe = self.client.pipeline(transaction=True)
                for code in error.codes:
                    pipe.hincrby(keys.rejected, code, 1)
                pipe.hset(keys.rejected, "last", last)
                pipe.execute()
        except ModelStoreError as exc:  # the refusal matters more than its count in Redis
            _log.warning("could not record the rejection in redis: %s", exc)

    def _member_keys(self, member: str) -> ModelKeys | None:
        """Keys of an index member; None for an entry this store could not have written."""
        policy, _, segment = member.partition(":")
        try:
            return self.keys(policy, segment)
        except ModelInputError:
            return None

    # -- notices
    def subscribe(self) -> redis.client.PubSub:
        """A pub/sub connection subscribed to :attr:`channel`; read it with :meth:`next_notice`."""
        with redis_errors("subscribe"):
            pubsub: redis.client.PubSub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            pubsub.subscribe(self.channel)
        return pubsub

    @staticmethod
    def next_notice(pubsub: redis.client.PubSub, timeout: float) -> ModelNotice | None:
        """The next notice within ``timeout`` seconds, or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            with redis_errors("next_notice"):
                message = pubsub.get_message(timeout=left)
            if message is not None and message.get("type") == "message":
                return decode_notice(message["data"])
        return None
