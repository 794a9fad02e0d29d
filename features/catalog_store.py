"""Versioned trip catalog in Redis: publish atomically, read, keep history, roll back.

Why: every scoring worker must serve the same catalog, changes must reach
them within seconds, and an analyst must be able to rebuild φ of any
impression from the catalog version it names. A version holds the trip
records, their static feature columns and metadata
(:mod:`features.catalog_records`); each publish is **one Lua script**
(:mod:`features._catalog_store_lua`) that

1. compares the current version with the one the writer started from
   (compare-and-set: the update agent and an operator's ``catalog publish``
   never overwrite each other silently — the loser gets :class:`VersionConflict`),
2. writes records, columns and meta under ``current + 1``,
3. drops versions older than the newest ``history`` (default 5),
4. publishes ``{"event": "catalog", "version": n}`` on ``<namespace>:catalog``.

Versions are monotonic: :meth:`CatalogStore.rollback` re-publishes an old
version's records as a new version. Every version carries the ``trips``
topic offsets it contains; a full publish or a rollback keeps the offsets of
the version it replaces, so the update agent resumes after them and never
re-applies older updates on top of an operator's catalog.

Keys: ``<namespace>:{catalog}:current`` (int), ``:history`` (sorted set),
``:rec:<n>``, ``:col:<n>``, ``:meta:<n>``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aredis

from features import _catalog_store_lua as lua
from features.catalog_records import (
    CatalogMeta,
    CorruptCatalog,
    EncodedTrips,
    check_digest,
    columns_from_bytes,
    decode_records,
    encode_trips,
)
from features.loader import load_catalog
from features.trip_update import TripState

__all__ = [
    "CatalogStore",
    "CatalogStoreError",
    "CatalogVersion",
    "CorruptCatalog",
    "EmptyStore",
    "StoreUnavailable",
    "UnknownVersion",
    "VersionConflict",
    "catalog_keys",
    "current_version_async",
    "fetch_version_async",
    "parse_read",
]

DEFAULT_HISTORY = 5


class CatalogStoreError(Exception):
    """Base of the catalog store's errors; ``retriable`` says whether trying again may help."""

    retriable = False


class StoreUnavailable(CatalogStoreError):
    """Redis did not answer."""

    retriable = True


class EmptyStore(CatalogStoreError):
    """No catalog has been published yet."""


class UnknownVersion(CatalogStoreError):
    """The version was never published or has left the history."""


class VersionConflict(CatalogStoreError):
    """Someone published since the writer read its base version."""

    retriable = True

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"expected current version {expected}, found {current}")
        self.expected, self.current = expected, current


@contextlib.contextmanager
def _redis_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise StoreUnavailable(f"{what}: redis unreachable: {exc}") from exc


@dataclass(frozen=True)
class CatalogKeys:
    namespace: str

    def __post_init__(self) -> None:
        if not self.namespace or any(c in self.namespace for c in "{}: \t\n"):
            raise ValueError(
                f"namespace: must be non-empty without braces, colons or spaces, got {self.namespace!r}"
            )

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:{{catalog}}:"

    @property
    def current(self) -> str:
        return self.prefix + "current"

    @property
    def history(self) -> str:
        return self.prefix + "history"

    @property
    def channel(self) -> str:
        return f"{self.namespace}:catalog"


def catalog_keys(namespace: str) -> CatalogKeys:
    """The key layout of ``namespace`` (validates it)."""
    return CatalogKeys(namespace)


@dataclass(frozen=True)
class CatalogVersion:
    """One stored version: its metadata, its trips (stored order) and their static columns (raw npz)."""

    meta: CatalogMeta
    trips: list[TripState]
    columns_blob: bytes

    def columns(self) -> dict[str, Any]:
        return columns_from_bytes(self.columns_blob)


def parse_read(reply: Sequence[Any], parts: str = "all", *, validate: bool = True) -> CatalogVersion:
    """A READ script reply as a :class:`CatalogVersion`.

    ``validate`` re-checks every row; without it the records blob must match
    the digest in its metadata (see :func:`features.catalog_records.decode_records`).
    """
    status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    if status == "empty":
        raise EmptyStore("no catalog published yet")
    if status == "no_version":
        raise UnknownVersion(f"version {int(reply[2])} is not in the store (current is {int(reply[1])})")
    meta = CatalogMeta.from_json(reply[3])
    if parts == "meta":
        return CatalogVersion(meta, [], b"")
    if not validate:
        check_digest(reply[4], meta)
    return CatalogVersion(meta, decode_records(reply[4], validate=validate), bytes(reply[5]))


async def current_version_async(client: aredis.Redis, namespace: str) -> int:
    """The current version (0 = none yet), for the scoring worker's poll."""
    with _redis_errors("current"):
        raw = await client.get(CatalogKeys(namespace).current)
    return int(raw) if raw is not None else 0


async def fetch_version_async(client: aredis.Redis, namespace: str, version: int | None = None) -> list[Any]:
    """The raw READ reply of ``version`` (default: current), for the scoring worker.

    Decode it with :func:`parse_read` off the event loop (it validates every row).
    """
    keys = CatalogKeys(namespace)
    which = "current" if version is None else str(int(version))
    with _redis_errors("read"):
        reply = await client.eval(lua.READ, 1, keys.current, keys.prefix, which, "all")
    return list(reply)


class CatalogStore:
    """Synchronous catalog store (CLI, update agent, tests); see the module docstring."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = "smarttrip",
        history: int = DEFAULT_HISTORY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if history < 1:
            raise ValueError(f"history: must be >= 1, got {history}")
        self.client = client
        self.keys = CatalogKeys(namespace)
        self.history_len = history
        self.clock = clock
        self._owns_client = False
        self._publish = client.register_script(lua.PUBLISH)
        self._read = client.register_script(lua.READ)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0, **kwargs: Any) -> CatalogStore:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        store = cls(client, **kwargs)
        store._owns_client = True
        return store

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads
    def current_version(self) -> int:
        """The current version (0 when nothing was published)."""
        with _redis_errors("current"):
            raw = self.client.get(self.keys.current)
        return int(raw) if raw is not None else 0

    def get(self, version: int | None = None) -> CatalogVersion:
        """Version ``version`` (default: the current one), records decoded and validated."""
        return self._get(version, "all")

    def meta(self, version: int | None = None) -> CatalogMeta:
        return self._get(version, "meta").meta

    def history(self) -> list[CatalogMeta]:
        """Metadata of the kept versions, newest first."""
        with _redis_errors("history"):
            versions = [int(cast(bytes, v)) for v in self.client.zrevrange(self.keys.history, 0, -1)]
            raws = self.client.mget([f"{self.keys.prefix}meta:{v}" for v in versions]) if versions else []
        return [CatalogMeta.from_json(cast(bytes, r)) for r in raws if r is not None]

    def _get(self, version: int | None, parts: str) -> CatalogVersion:
        which = "current" if version is None else str(int(version))
        with _redis_errors("read"):
            reply = self._read(keys=[self.keys.current], args=[self.keys.prefix, which, parts])
        return parse_read(reply, parts)

    # -- writes
    def publish(
        self,
        trips: Sequence[TripState] | EncodedTrips,
        *,
        expected_version: int,
        source: str,
        offsets: Mapping[int, int] | None = None,
        topic: str = "trips",
        updates_applied: int = 0,
        updates_rejected: int = 0,
        last_update_ts: float = 0.0,
    ) -> CatalogMeta:
        """Store ``trips`` as version ``expected_version + 1``; :class:`VersionConflict` if current moved.

        ``offsets`` (partition → next offset of the ``trips`` topic) default to
        those of the version replaced, so a full publish keeps the agent's place.
        ``trips`` may be given already encoded (:func:`~features.catalog_records.encode_trips`).
        """
        enc = trips if isinstance(trips, EncodedTrips) else encode_trips(trips)
        if offsets is None:
            offsets = self._offsets_of(expected_version)
        counts = enc.by_status
        meta = CatalogMeta(
            version=expected_version + 1, created_at=self.clock(), source=source[:200], parent=expected_version,
            trips=enc.trips, available=enc.trips - counts["unavailable"], by_status=counts,
            offsets=dict(offsets), topic=topic, updates_applied=updates_applied,
            updates_rejected=updates_rejected, last_update_ts=last_update_ts, records_sha256=enc.records_sha256,
        )  # fmt: skip
        with _redis_errors("publish"):
            reply = self._publish(
                keys=[self.keys.current, self.keys.history],
                args=[self.keys.prefix, expected_version, self.history_len, enc.records, enc.columns,
                      meta.to_json(), self.keys.channel],
            )  # fmt: skip
        if reply[0] in (b"conflict", "conflict"):
            raise VersionConflict(expected_version, int(reply[1]))
        return meta

    def publish_file(self, path: str | Path, *, retries: int = 3) -> CatalogMeta:
        """Validate ``path`` with the loader's strict mode, then publish it (all trips available)."""
        catalog = load_catalog(path, strict=True).catalog
        trips = [TripState(t) for t in catalog.trips]
        return self._publish_over_current(trips, f"file:{Path(path).name}", retries)

    def rollback(self, version: int, *, retries: int = 3) -> CatalogMeta:
        """Re-publish ``version``'s trips as a new version (the agent's offsets stay where they are)."""
        old = self.get(version)
        return self._publish_over_current(old.trips, f"rollback:{version}", retries)

    def _publish_over_current(self, trips: list[TripState], source: str, retries: int) -> CatalogMeta:
        encoded = encode_trips(trips)
        for attempt in range(retries):
            base = self.current_version()
            try:
                return self.publish(encoded, expected_version=base, source=source)
            except VersionConflict:
                if attempt == retries - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _offsets_of(self, version: int) -> dict[int, int]:
        if version == 0:
            return {}
        try:
            return dict(self.meta(version).offsets)
        except UnknownVersion:
            return {}
