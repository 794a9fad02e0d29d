"""The update agent's logic on a real catalog store: order, bad updates, offsets, rebase after a conflict."""

from __future__ import annotations

import json

import pytest

from features.catalog_store import CatalogStore
from features.generator import generate_trips
from features.trip_update import TripState
from monitoring.catalog_metrics import CatalogMetrics
from stream.catalog_updater import CatalogUpdater, TripRecord
from stream.codec import decode_dead_letter, encode

pytestmark = pytest.mark.integration

TRIPS = [TripState(t) for t in generate_trips(n_trips=20, seed=5)]
T0, T1 = TRIPS[0].trip.trip_id, TRIPS[1].trip.trip_id


def patch(offset: int, trip_id: str, ts: float = 100.0, partition: int = 0, **changes: object) -> TripRecord:
    body = {"v": 1, "op": "upsert", "trip_id": trip_id, "ts": ts, "set": changes}
    return TripRecord(partition, offset, trip_id.encode(), json.dumps(body).encode(), ts)


def updater_on(store: CatalogStore) -> tuple[CatalogUpdater, CatalogMetrics]:
    store.publish(TRIPS, expected_version=0, source="file")
    metrics = CatalogMetrics()
    updater = CatalogUpdater(store, metrics=metrics, clock=lambda: 101.5)
    updater.load()
    return updater, metrics


def sample(metrics: CatalogMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_updates_apply_in_order_and_publish_with_offsets(store: CatalogStore) -> None:
    updater, metrics = updater_on(store)
    for i, price in enumerate((500, 600, 700)):
        assert updater.offer(patch(i, T0, price=price)) is None
    assert updater.offer(patch(3, T1, status="last_places", available=False)) is None
    meta, dead = updater.publish()
    assert meta is not None and dead == [] and meta.version == 2
    assert (meta.offsets, meta.updates_applied, meta.source) == ({0: 4}, 4, "updates")
    stored = {s.trip.trip_id: s for s in store.get().trips}
    assert stored[T0].trip.price == 700.0
    assert stored[T1].trip.status == "last_places" and not stored[T1].available
    assert sample(metrics, "smarttrip_catalog_version") == 2
    assert sample(metrics, "smarttrip_catalog_trips", status="unavailable") == 1
    assert sample(metrics, "smarttrip_catalog_update_lag_seconds_count") == 4
    assert sample(metrics, "smarttrip_catalog_update_lag_seconds_sum") == pytest.approx(4 * 1.5)
    assert updater.publish() == (None, [])  # nothing read since


def test_bad_updates_are_dead_lettered_counted_and_change_nothing(store: CatalogStore) -> None:
    updater, metrics = updater_on(store)
    before = store.get().trips
    bad = [
        patch(0, "NO-SUCH-TRIP", price=10),  # unknown trip
        patch(1, T0, price="ten"),  # wrong type
        patch(2, T0, status=["open"]),  # wrong type
        patch(3, T0, price=-1),  # negative price
        TripRecord(0, 4, T0.encode(), b"\xff garbage", 100.0),
    ]
    letters = [updater.offer(r) for r in bad]
    assert all(letter is not None for letter in letters)
    reasons = [letter.reason for letter in letters if letter is not None]
    assert reasons == ["unknown_trip", "invalid_field", "invalid_field", "invalid_field", "bad_json"]
    first = letters[0]
    assert (
        first is not None
        and "unknown trip 'NO-SUCH-TRIP'" in first.detail
        and first.stage == "catalog_update"
    )
    assert decode_dead_letter(encode(first)) == first  # a valid record of the deadletter topic
    assert first.excerpt() == bad[0].value
    assert sample(metrics, "smarttrip_catalog_rejected_updates_total", reason="invalid_field") == 3
    assert sample(metrics, "smarttrip_catalog_rejected_updates_total", reason="unknown_trip") == 1
    assert sample(metrics, "smarttrip_catalog_updates_total", outcome="rejected") == 5
    meta, _ = updater.publish()  # the offsets advance (never re-read), the trips do not change
    assert (
        meta is not None
        and meta.offsets == {0: 5}
        and meta.updates_rejected == 5
        and meta.updates_applied == 0
    )
    assert store.get().trips == before


def test_records_already_in_the_stored_version_are_skipped(store: CatalogStore) -> None:
    updater, _ = updater_on(store)
    updater.offer(patch(0, T0, price=1))
    updater.offer(patch(1, T0, price=2))
    updater.publish()
    restarted = CatalogUpdater(store)
    restarted.load()
    assert restarted.start_offset(0) == 2 and restarted.start_offset(1) == 0
    assert restarted.offer(patch(0, T0, price=999)) is None and not restarted.dirty  # replayed: skipped
    restarted.offer(patch(2, T0, price=3))
    meta, _ = restarted.publish()
    assert meta is not None and meta.offsets == {0: 3}
    assert {s.trip.trip_id: s for s in store.get().trips}[T0].trip.price == 3.0


def test_a_conflicting_publish_rebases_pending_updates_on_the_operators_version(store: CatalogStore) -> None:
    updater, metrics = updater_on(store)
    updater.offer(patch(0, T0, price=111))
    updater.offer(patch(1, T1, price=222))
    operator = [s for s in TRIPS if s.trip.trip_id != T1]  # an operator publishes a catalog without T1
    store.publish(operator, expected_version=1, source="file:new")
    meta, dead = updater.publish()
    assert meta is not None and meta.version == 3 and meta.parent == 2
    assert [d.reason for d in dead] == ["unknown_trip"]  # T1's update no longer applies
    stored = {s.trip.trip_id: s for s in store.get().trips}
    assert stored[T0].trip.price == 111.0 and T1 not in stored and len(stored) == 19
    assert meta.offsets == {0: 2}
    assert sample(metrics, "smarttrip_catalog_publishes_total", outcome="conflict") == 1


def test_an_insert_past_the_theme_limit_is_rejected_not_fatal(store: CatalogStore) -> None:
    updater, _ = updater_on(store)
    used = {th for s in TRIPS for th in s.trip.themes}
    new_themes = [f"theme-{i}" for i in range(64 - len(used) + 1)]  # one more than the catalog can hold
    row = {**TRIPS[0].trip.to_dict(), "trip_id": "NEW1", "themes": new_themes[:20]}
    ok = {"v": 1, "op": "upsert", "trip_id": "NEW1", "ts": 1.0, "trip": row}
    assert updater.offer(TripRecord(0, 0, b"NEW1", json.dumps(ok).encode(), 1.0)) is None
    too_many = {**ok, "trip_id": "NEW2", "trip": {**row, "trip_id": "NEW2", "themes": new_themes[20:]}}
    letter = updater.offer(TripRecord(0, 1, b"NEW2", json.dumps(too_many).encode(), 1.0))
    assert (
        letter is not None
        and letter.reason == "invalid_field"
        and "at most 64 are supported" in letter.detail
    )
    meta, _ = updater.publish()  # the version still builds
    assert meta is not None and meta.trips == 21
