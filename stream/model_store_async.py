"""Async read side of the model store, for the scoring worker's live model cache.

Why: the scoring worker is an asyncio HTTP server and must never block on
Redis. It needs only reads — the serving version and its bytes — and the
notices of new versions; writes stay with the learner and the CLI
(:class:`stream.model_store.ModelStore`). Reads use the same atomic READ script
and key layout as the sync store.

Pub/sub is fire-and-forget: a notice sent while the worker is disconnected is
lost. So a cache should treat notices as hints and also poll
:meth:`AsyncModelStore.serving_version` now and then (and after every
reconnect), loading bytes only when the version changed.

Example
-------
>>> async def follow(store: AsyncModelStore) -> None:  # doctest: +SKIP
...     async with store.subscribe() as notices:
...         async for notice in notices:
...             record = await store.serving(notice.policy, notice.segment)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aredis
import redis.asyncio.client

from stream import _model_store_lua as lua
from stream._model_store_errors import CorruptRecord, ModelInputError, UnknownModel, redis_errors
from stream._model_store_promotion import gated_version
from stream._model_store_records import (
    DEFAULT_NAMESPACE,
    ModelKeys,
    ModelNotice,
    ModelRecord,
    check_version,
    decode_notice,
    opt_int,
    parse_read,
    text,
)

__all__ = ["AsyncModelStore", "NoticeSubscription"]

_log = logging.getLogger(__name__)


class NoticeSubscription:
    """An open subscription to the models channel (see :meth:`AsyncModelStore.subscribe`).

    Iterate it (``async for notice in sub``) or call :meth:`next` with a
    timeout. Malformed messages on the channel are logged and skipped.
    """

    def __init__(self, pubsub: redis.asyncio.client.PubSub) -> None:
        self._pubsub = pubsub

    async def next(self, timeout: float) -> ModelNotice | None:
        """The next notice within about ``timeout`` seconds, or None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            with redis_errors("notices"):
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is None or message.get("type") != "message":
                continue
            try:
                return decode_notice(message["data"])
            except CorruptRecord as exc:
                _log.warning("skipping a malformed model notice: %s", exc)
        return None

    def __aiter__(self) -> NoticeSubscription:
        return self

    async def __anext__(self) -> ModelNotice:
        while True:
            notice = await self.next(1.0)
            if notice is not None:
                return notice


class AsyncModelStore:
    """Async reads of the model store (serving side).

    Parameters
    ----------
    client
        A ``redis.asyncio`` client created with ``decode_responses=False``.
    namespace
        The namespace the learners publish under.
    """

    def __init__(self, client: aredis.Redis, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        encoder = getattr(client, "get_encoder", None)
        if encoder is not None and getattr(encoder(), "decode_responses", False):
            raise ModelInputError("client", "must be created with decode_responses=False")
        ModelKeys(namespace, "p", "s")  # validates the namespace
        self.client = client
        self.namespace = namespace
        self._owns_client = False
        self._read = client.register_script(lua.READ)

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 2.0, namespace: str = DEFAULT_NAMESPACE
    ) -> AsyncModelStore:
        """A store with its own client for ``url``; :meth:`aclose` closes it."""
        client = aredis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        store = cls(client, namespace=namespace)
        store._owns_client = True
        return store

    async def aclose(self) -> None:
        """Close the client if this store created it (:meth:`from_url`)."""
        if self._owns_client:
            await self.client.aclose()

    @property
    def channel(self) -> str:
        """The pub/sub channel of :class:`~stream.model_store.ModelNotice` messages."""
        return f"{self.namespace}:models"

    def keys(self, policy: str, segment: str) -> ModelKeys:
        return ModelKeys(self.namespace, policy, segment)

    async def get(self, policy: str, segment: str, version: int | None = None) -> ModelRecord:
        """The record of ``version`` (default: the current one)."""
        which = "current" if version is None else str(check_version("version", version))
        return await self._read_record(self.keys(policy, segment), which)

    async def serving(self, policy: str, segment: str, *, gated: bool = False) -> ModelRecord:
        """The record to serve: the pinned version if any, else the current one.

        ``gated``: the pinned version, else the promoted one
        (:mod:`stream._model_store_promotion`); :class:`NotPromoted` if neither.
        """
        return await self._read_record(self.keys(policy, segment), "gated" if gated else "serving")

    async def serving_version(self, policy: str, segment: str, *, gated: bool = False) -> int:
        """The version to serve, without its bytes (cheap enough to poll); ``gated`` as in :meth:`serving`."""
        keys = self.keys(policy, segment)
        with redis_errors("serving_version"):
            current, pin, promoted = await self.client.mget(keys.reads)
        if gated:
            return gated_version(policy, segment, current, pin, promoted)
        if current is None:
            raise UnknownModel(policy, segment)
        pinned = opt_int(pin)
        return int(text(current)) if pinned is None else pinned

    async def versions(self, policy: str, segment: str) -> tuple[int, int | None, int | None, int | None]:
        """(current, pinned, promoted, nominated) versions; :class:`UnknownModel` if nothing was published."""
        keys = self.keys(policy, segment)
        with redis_errors("versions"):
            current, pin, promoted, nominated = await self.client.mget([*keys.reads, keys.nominated])
        if current is None:
            raise UnknownModel(policy, segment)
        return int(text(current)), opt_int(pin), opt_int(promoted), opt_int(nominated)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[NoticeSubscription]:
        """Subscribe to the models channel for the duration of the ``async with`` block.

        The subscription is active when the block starts, so notices of writes
        made after that point are received.
        """
        pubsub: redis.asyncio.client.PubSub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            with redis_errors("subscribe"):
                await pubsub.subscribe(self.channel)
            yield NoticeSubscription(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read_record(self, keys: ModelKeys, which: str) -> ModelRecord:
        with redis_errors("get"):
            reply = await self._read(keys=keys.reads, args=[keys.prefix, which])
        return parse_read(keys, reply, which)
