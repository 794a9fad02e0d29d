"""Versioned model store in Redis: publish, read, history, rollback, pin.

Why: learners publish a model per (policy, segment) every few seconds and the
scoring workers must pick it up, while ops must be able to see what is served,
go back to an earlier version, or freeze one. Each publish is **one atomic Lua
script** (:mod:`stream._model_store_lua`) that

1. checks the compare-and-set base (``expected_version``; two learner workers
   after a rebalance cannot both publish version N+1 from different states),
2. stores bytes and metadata — including the input ``offsets`` per partition
   of the examples topic and the log's ``log_epoch`` — under the next version,
3. trims the history to the newest ``history`` versions (never the pinned one),
4. publishes a :class:`ModelNotice` on ``<namespace>:models``.

The set of published models (``<namespace>:index``, for listing) lives in
another Redis Cluster slot, so the script cannot add to it: the store adds a
model to it (``SADD``) before its first publish, and afterwards only every
``index_refresh_s``, so a steady-state publish is one round trip. A publish
that skipped the ``SADD`` tells the script so, and the script refuses to
create a model from nothing (Redis restarted empty, the index lost with it):
the store then indexes it again and retries. A model is never created
unindexed.

So a model and the offsets it has consumed are written together: after a
crash the learner reads :meth:`ModelStore.get` and skips every example that
``record.meta.covers(partition, offset, epoch)`` (effectively-once updates).
Guardrails (:mod:`stream.guardrails`) run before the script; a refused model
raises :class:`GuardrailError`, is counted (``store.rejected``, the
``on_rejected`` callback and the ``rejected`` hash in Redis) and changes
nothing, so the scoring side keeps serving the previous version.

The serving side reads :meth:`ModelStore.serving` (the pinned version if one
is pinned, else the current one) or, with the promotion gate on,
:meth:`ModelStore.serving_gated` (the pin, else the version the gate
promoted — :mod:`stream._model_store_promotion`; never a held candidate). :meth:`ModelStore.rollback` re-publishes
the bytes of an earlier version, unchanged, as a *new* version (versions stay
monotonic, a notice goes out, a learner's next conditional publish fails and
makes it reload). Key layout: :mod:`stream._model_store_records`; errors:
:mod:`stream._model_store_errors`; async reads: :mod:`stream.model_store_async`.

Settings (``ModelStoreSettings.from_env``): ``SMARTTRIP_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``), ``SMARTTRIP_MODEL_NAMESPACE`` (``smarttrip``),
``SMARTTRIP_MODEL_HISTORY`` (10); guardrails: see :class:`Guardrails.from_env`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import redis

from stream import _model_store_lua as lua
from stream._model_store_errors import (
    CorruptRecord,
    GuardrailError,
    ModelInputError,
    ModelStoreError,
    NotPromoted,
    StoreUnavailable,
    UnknownModel,
    UnknownVersion,
    VersionConflict,
    redis_errors,
)
from stream._model_store_inspect import Rejections, StoreInspection
from stream._model_store_promotion import PromotionConflict, PromotionOps
from stream._model_store_records import (
    DEFAULT_NAMESPACE,
    DEFAULT_REDIS_URL,
    ModelKeys,
    ModelMeta,
    ModelNotice,
    ModelRecord,
    ModelStoreSettings,
    ModelSummary,
    VersionInfo,
    check_version,
    checked_offsets,
    decode_notice,
    encode_meta,
    finite_metrics,
    notice_head,
    opt_int,
    parse_publish,
    parse_read,
    text,
)
from stream._model_store_verdict import GateVerdict
from stream.guardrails import Guardrails, WeightsLike, learner_weights

if TYPE_CHECKING:
    from bandit.protocol import Learner

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_REDIS_URL",
    "CorruptRecord",
    "GateVerdict",
    "GuardrailError",
    "ModelInputError",
    "ModelKeys",
    "ModelMeta",
    "ModelNotice",
    "ModelRecord",
    "ModelStore",
    "ModelStoreError",
    "ModelStoreSettings",
    "ModelSummary",
    "NotPromoted",
    "PromotionConflict",
    "Rejections",
    "StoreUnavailable",
    "UnknownModel",
    "UnknownVersion",
    "VersionConflict",
    "VersionInfo",
    "decode_notice",
]

_log = logging.getLogger(__name__)
_ROLLBACK_ATTEMPTS = 3
WriteEvent = Literal["publish", "rollback"]


def _digest(model_bytes: bytes) -> str:
    return hashlib.sha256(model_bytes).hexdigest()


class ModelStore(StoreInspection, PromotionOps):
    """Synchronous model store (learner agent, CLI, tests).

    Parameters
    ----------
    client
        A redis-py client created with ``decode_responses=False`` (bytes in,
        bytes out). Keys are hash-tagged for Redis Cluster (one slot per model),
        but this class is typed for, and tested with, a standalone client.
    namespace
        Prefix of every key and of the notice channel.
    history
        How many newest versions keep their bytes (>= 1; a pinned one is kept too).
    guardrails
        Checks a model must pass before :meth:`publish` (default: finite, |w| <= 1e6).
    clock
        Wall clock for ``created_at`` (seconds since the epoch).
    on_rejected
        Called with each :class:`GuardrailError` before it is raised (e.g. to
        increment a Prometheus counter on the process's own registry).
    index_refresh_s
        Seconds after which a model this store has indexed is added to the
        index set again on its next publish (the set can be lost on its own,
        e.g. on another Redis Cluster node); 0 = at every publish.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        history: int = 10,
        guardrails: Guardrails | None = None,
        clock: Callable[[], float] = time.time,
        on_rejected: Callable[[GuardrailError], None] | None = None,
        index_refresh_s: float = 60.0,
    ) -> None:
        encoder = getattr(client, "get_encoder", None)
        if encoder is not None and getattr(encoder(), "decode_responses", False):
            raise ModelInputError("client", "must be created with decode_responses=False")
        ModelKeys(namespace, "p", "s")  # validates the namespace
        self.client = client
        self.namespace = namespace
        self.history_len = check_version("history", history)
        self.guardrails = guardrails if guardrails is not None else Guardrails()
        self.clock = clock
        self.on_rejected = on_rejected
        ok = isinstance(index_refresh_s, int | float) and not isinstance(index_refresh_s, bool)
        if not ok or not 0 <= index_refresh_s < math.inf:
            raise ModelInputError("index_refresh_s", f"must be a finite number >= 0, got {index_refresh_s!r}")
        self.index_refresh_s = float(index_refresh_s)
        self._indexed: dict[str, float] = {}  # index member -> time.monotonic() of its last SADD
        #: Guardrail refusals of this process, per violation code.
        self.rejected: Counter[str] = Counter()
        self._owns_client = False
        self._publish = client.register_script(lua.PUBLISH)
        self._read = client.register_script(lua.READ)
        self._pin = client.register_script(lua.PIN)
        self._unpin = client.register_script(lua.UNPIN)
        self._decide = client.register_script(lua.DECIDE)
        self._nominate = client.register_script(lua.NOMINATE)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0, **kwargs: Any) -> ModelStore:
        """A store with its own client for ``url``; :meth:`close` closes it."""
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        store = cls(client, **kwargs)
        store._owns_client = True
        return store

    def close(self) -> None:
        """Close the client if this store created it (:meth:`from_url`)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> ModelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes
    def publish(
        self,
        policy: str,
        segment: str,
        model_bytes: bytes,
        *,
        weights: WeightsLike,
        examples_seen: int,
        offsets: Mapping[int, int],
        log_epoch: str,
        kind: str,
        metrics: Mapping[str, float] | None = None,
        expected_version: int | None = None,
    ) -> int:
        """Store a new version atomically and announce it; returns its number.

        ``expected_version`` makes the write conditional: it succeeds only if
        the current version is exactly that (0 = no model yet), else
        :class:`VersionConflict`. ``weights`` are checked by the guardrails
        (and, when named, kept in the metadata for ``models show``).

        Raises
        ------
        GuardrailError
            The model fails a guardrail; nothing is written.
        VersionConflict
            The current version is not ``expected_version``.
        StoreUnavailable
            Redis is unreachable (retriable: nothing or everything was written; a
            conditional publish retried after its first attempt landed returns
            that version rather than a conflict).
        """
        keys = self.keys(policy, segment)
        if expected_version is not None:
            check_version("expected_version", expected_version, low=0)
        if not isinstance(model_bytes, bytes | bytearray | memoryview) or len(model_bytes) == 0:
            raise ModelInputError("model_bytes", "must be non-empty bytes")
        if not isinstance(kind, str) or not 0 < len(kind) <= 64:
            raise ModelInputError(
                "kind", f"must be a non-empty string of at most 64 characters, got {kind!r}"
            )
        if not isinstance(log_epoch, str) or len(log_epoch) > 256:
            raise ModelInputError(
                "log_epoch", f"must be a string of at most 256 characters, got {log_epoch!r}"
            )
        check_version("examples_seen", examples_seen, low=0)
        meta = ModelMeta(
            kind=kind,
            examples_seen=examples_seen,
            created_at=float(self.clock()),
            log_epoch=log_epoch,
            size=len(model_bytes),
            sha256=_digest(bytes(model_bytes)),
            offsets=checked_offsets(offsets),
            metrics=finite_metrics(metrics),
            parent_version=expected_version,
        )
        violations = self.guardrails.check(weights, examples_seen)
        if violations:
            error = GuardrailError(policy, segment, violations)
            self._refuse(keys, error)
            raise error
        if isinstance(weights, Mapping):
            meta = dataclasses.replace(meta, weights={str(k): float(v) for k, v in weights.items()})
        try:
            return self._write(keys, bytes(model_bytes), meta, expected_version, "publish")
        except VersionConflict as conflict:
            if expected_version is None or conflict.actual != expected_version + 1:
                raise
            # A retry of a write that landed (the client re-sends after a timeout): same bytes
            # and offsets on top of our base mean it was ours, so the publish is idempotent.
            try:
                landed = self._read_record(keys, str(conflict.actual)).meta
            except UnknownVersion:
                raise conflict from None
            same = (landed.event, landed.sha256, landed.offsets, landed.log_epoch, landed.parent_version)
            if same != ("publish", meta.sha256, meta.offsets, meta.log_epoch, meta.parent_version):
                raise
            return conflict.actual

    def publish_learner(
        self,
        policy: str,
        segment: str,
        learner: Learner,
        *,
        offsets: Mapping[int, int],
        log_epoch: str,
        metrics: Mapping[str, float] | None = None,
        expected_version: int | None = None,
    ) -> int:
        """:meth:`publish` a :mod:`bandit` learner: its bytes, kind, example count and weights."""
        return self.publish(
            policy,
            segment,
            learner.to_bytes(),
            weights=learner_weights(learner),
            examples_seen=learner.n_examples,
            offsets=offsets,
            log_epoch=log_epoch,
            kind=learner.kind,
            metrics=metrics,
            expected_version=expected_version,
        )

    def rollback(
        self, policy: str, segment: str, version: int, *, expected_version: int | None = None
    ) -> int:
        """Re-publish the exact bytes of ``version`` as a new version; returns the new number.

        The new version takes bytes, kind, weights, metrics and examples_seen
        from ``version`` and ``offsets``/``log_epoch`` from the version it
        replaces: input consumed so far is *not* re-learned. Guardrails are
        not re-run (the version passed them when first published), and a pin
        is left as it is. Without ``expected_version`` a concurrent publish
        is retried a few times.
        """
        keys = self.keys(policy, segment)
        check_version("version", version)
        attempts = 1 if expected_version is not None else _ROLLBACK_ATTEMPTS
        for attempt in range(attempts):
            current = self._read_record(keys, "current")
            if version == current.version:
                raise ModelInputError("version", f"{version} is already the current version")
            target = self._read_record(keys, str(version))
            base = current.version if expected_version is None else expected_version
            meta = dataclasses.replace(
                target.meta,
                created_at=float(self.clock()),
                offsets=dict(current.meta.offsets),
                log_epoch=current.meta.log_epoch,
                parent_version=base,
                rolled_back_from=version,
                event="rollback",
            )
            try:
                return self._write(keys, target.model_bytes, meta, base, "rollback")
            except VersionConflict:
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def pin(self, policy: str, segment: str, version: int) -> None:
        """Serve ``version`` regardless of newer publishes, until :meth:`unpin`; it is never trimmed."""
        keys = self.keys(policy, segment)
        check_version("version", version)
        with redis_errors("pin"):
            reply = self._pin(
                keys=keys.writes,
                args=[keys.prefix, str(version), self.channel, notice_head("pin", keys)],
            )
        status = text(reply[0])
        if status == "no_model":
            raise UnknownModel(policy, segment)
        if status == "no_version":
            raise UnknownVersion(policy, segment, version)

    def unpin(self, policy: str, segment: str) -> int | None:
        """Serve the current version again; returns the version that was pinned (None if none)."""
        keys = self.keys(policy, segment)
        with redis_errors("unpin"):
            reply = self._unpin(
                keys=keys.writes,
                args=[keys.prefix, self.channel, notice_head("unpin", keys)],
            )
        if text(reply[0]) == "not_pinned":
            if int(reply[1]) == 0:
                raise UnknownModel(policy, segment)
            return None
        return int(reply[2])

    # -- reads
    def get(self, policy: str, segment: str, version: int | None = None) -> ModelRecord:
        """The record of ``version`` (default: the current one, whatever is pinned)."""
        which = "current" if version is None else str(check_version("version", version))
        return self._read_record(self.keys(policy, segment), which)

    def serving(self, policy: str, segment: str) -> ModelRecord:
        """The record the scoring side should serve: the pinned version, else the current one."""
        return self._read_record(self.keys(policy, segment), "serving")

    def serving_version(self, policy: str, segment: str) -> int:
        """The pinned version if any, else the current one; :class:`UnknownModel` if none."""
        keys = self.keys(policy, segment)
        with redis_errors("serving_version"):
            current, pin = self.client.mget([keys.current, keys.pin])
        if current is None:
            raise UnknownModel(policy, segment)
        pinned = opt_int(pin)
        return int(text(current)) if pinned is None else pinned

    def current_version(self, policy: str, segment: str) -> int:
        """The latest version number, 0 if nothing was published (a CAS base for the first publish)."""
        keys = self.keys(policy, segment)
        with redis_errors("current_version"):
            raw = self.client.get(keys.current)
        return 0 if raw is None else int(text(raw))

    # -- internals
    def _read_record(self, keys: ModelKeys, which: str) -> ModelRecord:
        with redis_errors("get"):
            reply = self._read(keys=keys.reads, args=[keys.prefix, which])
        return parse_read(keys, reply, which)

    def _refuse(self, keys: ModelKeys, error: GuardrailError) -> None:
        self.rejected.update(error.codes)
        _log.warning("%s", error)
        if self.on_rejected is not None:
            self.on_rejected(error)
        self.record_rejection(keys, error, at=float(self.clock()))

    def _write(
        self, keys: ModelKeys, blob: bytes, meta: ModelMeta, expected: int | None, event: WriteEvent
    ) -> int:
        head = notice_head(event, keys)
        args: list[str | bytes] = [keys.prefix, "" if expected is None else str(expected)]
        args += [str(self.history_len), blob, encode_meta(meta), self.channel, head]
        member = keys.member
        last = self._indexed.get(member)
        indexed_at: float | None = None
        with redis_errors(event):
            if last is None or time.monotonic() - last >= self.index_refresh_s:
                # Index first (idempotent): a failure here has written nothing, so a retry is safe.
                indexed_at = time.monotonic()
                self.client.sadd(self.index_key, member)
            reply = self._publish(keys=keys.writes, args=[*args, "1" if indexed_at is None else ""])
            if text(reply[0]) == "unindexed":  # no model: Redis lost it, and with it the index entry
                self._indexed.pop(member, None)
                indexed_at = time.monotonic()
                self.client.sadd(self.index_key, member)
                reply = self._publish(keys=keys.writes, args=[*args, ""])
        version = parse_publish(keys, reply, expected)
        if indexed_at is not None:  # remembered once a write went through: the model exists, indexed
            self._indexed[member] = indexed_at
        return version
