"""Apply trip updates to the stored catalog, in order, and publish versions: the logic, without Kafka.

:class:`CatalogUpdater` holds the trips of the version it started from plus
every update read since, and the ``trips`` topic offset each partition has
reached. :meth:`CatalogUpdater.offer` validates and applies one record; a bad
one (malformed, negative price, unknown trip…) becomes a
:class:`~stream.events.DeadLetter` with its reason, is counted, and changes
nothing — but its offset still advances, so it is never read again.
:meth:`CatalogUpdater.publish` writes one new version (records, columns and
the offsets it contains, atomically) compare-and-set on its base; when an
operator published or rolled back in between, it reloads that version and
re-applies the updates not yet published on top of it (the operator's
catalog wins for everything older).

Records at offsets below those of the loaded version are already in it and
are skipped: a restarted agent resumes exactly where the stored catalog ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from features.catalog import MAX_THEMES
from features.catalog_records import CatalogMeta, status_counts
from features.catalog_store import CatalogStore, VersionConflict
from features.trip_update import TripState, TripUpdate, TripUpdateError, apply_update, decode_trip_update
from monitoring.catalog_metrics import CatalogMetrics
from stream.events import DeadLetter

__all__ = ["CatalogUpdater", "TripRecord"]

log = logging.getLogger(__name__)

_REBASE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class TripRecord:
    """One record of the ``trips`` topic as the consumer hands it over (``ts`` in seconds)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    ts: float


class CatalogUpdater:
    """Updates applied in order on top of a stored version (see the module docstring)."""

    def __init__(
        self,
        store: CatalogStore,
        *,
        topic: str = "trips",
        metrics: CatalogMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.topic = topic
        self.metrics = metrics or CatalogMetrics()
        self.clock = clock
        self.base: CatalogMeta | None = None
        self.trips: dict[str, TripState] = {}
        self.offsets: dict[int, int] = {}
        self._pending: list[tuple[TripRecord, TripUpdate]] = []  # applied, not yet published
        self._rejected = 0
        self._dirty = False
        self._themes_seen: set[str] = set()  # every theme used since load (a superset of those in use)

    # -- state
    def load(self) -> CatalogMeta:
        """Start from the current stored version (raises :class:`~features.catalog_store.EmptyStore`)."""
        current = self.store.get()
        self.base = current.meta
        self.trips = {s.trip.trip_id: s for s in current.trips}
        self._themes_seen = {th for s in current.trips for th in s.trip.themes}
        merged = dict(current.meta.offsets)
        for p, o in self.offsets.items():  # a rebase keeps what this agent has already read
            merged[p] = max(o, merged.get(p, 0))
        self.offsets = merged
        self.metrics.set_version(current.meta.version, current.meta.created_at, current.meta.by_status)
        return current.meta

    def start_offset(self, partition: int) -> int:
        """Where to start reading ``partition``: the first offset the loaded version does not contain."""
        return self.offsets.get(partition, 0)

    @property
    def dirty(self) -> bool:
        """Whether records were read since the last publish (so offsets or trips changed)."""
        return self._dirty

    # -- records
    def offer(self, record: TripRecord) -> DeadLetter | None:
        """Apply one record; returns its dead letter if it was rejected (then nothing changed)."""
        if record.offset < self.offsets.get(record.partition, 0):
            return None  # already contained in the loaded version
        self.offsets[record.partition] = record.offset + 1
        self._dirty = True
        try:
            update = decode_trip_update(record.key, record.value)
            self._check_themes(update)
            outcome = apply_update(self.trips, update)
        except TripUpdateError as exc:
            return self._reject(record, exc)
        self.metrics.updates.labels(outcome).inc()
        self._pending.append((record, update))
        return None

    def _check_themes(self, update: TripUpdate) -> None:
        """A whole-trip update must not take the catalog past :data:`~features.catalog.MAX_THEMES` themes.

        Otherwise no version could be built from the trips any more, and the
        agent would stop at the same record after every restart.
        """
        if update.trip is None:
            return
        new = set(update.trip.trip.themes)
        if len(self._themes_seen | new) <= MAX_THEMES:  # a superset of the themes in use: no scan needed
            self._themes_seen |= new
            return
        themes = {th for tid, s in self.trips.items() if tid != update.trip_id for th in s.trip.themes} | new
        replaced = self.trips.get(update.trip_id)
        self._themes_seen = themes | (set(replaced.trip.themes) if replaced is not None else set())
        if len(themes) > MAX_THEMES:
            raise TripUpdateError(
                "trip.themes",
                f"the catalog would use {len(themes)} distinct themes; at most {MAX_THEMES} are supported",
            )

    def _reject(self, record: TripRecord, exc: TripUpdateError) -> DeadLetter:
        self._rejected += 1
        self.metrics.updates.labels("rejected").inc()
        self.metrics.rejected.labels(exc.reason).inc()
        return DeadLetter.from_bytes(
            record.value or b"", source_topic=self.topic, reason=exc.reason, stage="catalog_update",
            detail=f"partition {record.partition} offset {record.offset}: {exc}", ts=record.ts,
        )  # fmt: skip

    # -- versions
    def publish(self) -> tuple[CatalogMeta | None, list[DeadLetter]]:
        """Publish the trips and offsets as a new version if anything was read since the last one.

        Returns the new metadata (None if there was nothing to publish) and the
        dead letters of updates that no longer applied after a rebase.
        """
        if not self._dirty:
            return None, []
        dead: list[DeadLetter] = []
        for _ in range(_REBASE_ATTEMPTS):
            if self.base is None:
                raise RuntimeError("CatalogUpdater.publish: call load() first")
            try:
                meta = self.store.publish(
                    list(self.trips.values()), expected_version=self.base.version, source="updates",
                    offsets=self.offsets, topic=self.topic, updates_applied=len(self._pending),
                    updates_rejected=self._rejected,
                    last_update_ts=max((r.ts for r, _ in self._pending), default=0.0),
                )  # fmt: skip
            except VersionConflict as exc:
                self.metrics.publishes.labels("conflict").inc()
                log.warning(
                    "catalog: %s; rebasing %d pending updates on the stored version", exc, len(self._pending)
                )
                dead.extend(self._rebase())
                continue
            now = self.clock()
            for record, _ in self._pending:
                self.metrics.lag.observe(max(now - record.ts, 0.0))
            self.metrics.publishes.labels("ok").inc()
            self.metrics.set_version(meta.version, meta.created_at, status_counts(self.trips.values()))
            self.base = meta
            self._pending.clear()
            self._rejected = 0
            self._dirty = False
            return meta, dead
        raise VersionConflict(self.base.version if self.base else 0, self.store.current_version())

    def _rebase(self) -> list[DeadLetter]:
        pending, self._pending = self._pending, []
        self.load()
        dead: list[DeadLetter] = []
        for record, update in pending:
            try:
                self._check_themes(update)
                apply_update(self.trips, update)
            except TripUpdateError as exc:
                dead.append(self._reject(record, exc))
                continue
            self._pending.append((record, update))
        return dead
