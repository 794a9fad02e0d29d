"""The catalog store against a real redis-server: atomic versions, history, CAS, rollback, notices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from features.catalog_records import serving_catalog
from features.catalog_store import CatalogStore, EmptyStore, UnknownVersion, VersionConflict
from features.generator import generate_trips
from features.loader import CatalogLoadError, write_catalog
from features.trip_update import TripState

pytestmark = pytest.mark.integration

TRIPS = [TripState(t) for t in generate_trips(n_trips=50, seed=11)]


def test_empty_store_says_so(store: CatalogStore) -> None:
    assert store.current_version() == 0
    with pytest.raises(EmptyStore):
        store.get()


def test_publish_round_trips_records_and_columns(store: CatalogStore) -> None:
    states = [*TRIPS[:-1], TripState(TRIPS[-1].trip, available=False)]
    meta = store.publish(states, expected_version=0, source="test", offsets={0: 7})
    got = store.get()
    assert got.meta == meta and meta.version == 1 and meta.offsets == {0: 7}
    assert got.trips == states
    assert (meta.trips, meta.available, meta.by_status["unavailable"]) == (50, 49, 1)
    cols = got.columns()
    assert cols["trip_id"].tolist() == [s.trip.trip_id for s in states]
    assert cols["available"].tolist() == [True] * 49 + [False]
    assert np.array_equal(cols["price"], [s.trip.price for s in states])
    serving = serving_catalog(got.trips, meta.label)
    assert len(serving) == 49 and TRIPS[-1].trip.trip_id not in serving.index and serving.version == "1"


def test_compare_and_set_refuses_a_stale_base(store: CatalogStore) -> None:
    store.publish(TRIPS, expected_version=0, source="a")
    with pytest.raises(VersionConflict) as info:
        store.publish(TRIPS[:10], expected_version=0, source="b")
    assert info.value.current == 1
    assert store.get().meta.source == "a" and store.current_version() == 1


def test_history_keeps_the_newest_versions(store: CatalogStore) -> None:
    for v in range(5):
        store.publish(TRIPS[: 10 + v], expected_version=v, source=f"p{v}")
    assert [m.version for m in store.history()] == [5, 4, 3]
    with pytest.raises(UnknownVersion):
        store.get(2)
    assert len(store.get(3).trips) == 12


def test_rollback_republishes_old_trips_and_keeps_current_offsets(store: CatalogStore) -> None:
    store.publish(TRIPS, expected_version=0, source="file", offsets={0: 5})
    changed = [TripState(s.trip, available=False) for s in TRIPS]
    store.publish(changed, expected_version=1, source="updates", offsets={0: 90})
    meta = store.rollback(1)
    assert meta.version == 3 and meta.source == "rollback:1"
    assert meta.offsets == {0: 90}  # updates before offset 90 are not re-applied by the agent
    assert store.get().trips == TRIPS


def test_publish_file_is_strict_and_atomic(store: CatalogStore, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    write_catalog([s.trip for s in TRIPS], good)
    assert store.publish_file(good).version == 1
    bad = tmp_path / "bad.jsonl"
    rows = good.read_text().splitlines()
    row = json.loads(rows[3])
    row["price"] = -5
    rows[3] = json.dumps(row)
    bad.write_text("\n".join(rows))
    with pytest.raises(CatalogLoadError, match="line 4: price: must be >= 0, got -5"):
        store.publish_file(bad)
    assert store.current_version() == 1


def test_publish_sends_a_notice(store: CatalogStore) -> None:
    pubsub = store.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(store.keys.channel)
    try:
        store.publish(TRIPS, expected_version=0, source="n")
        message = None
        for _ in range(50):
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                break
        assert message is not None and json.loads(message["data"]) == {"event": "catalog", "version": 1}
    finally:
        pubsub.close()
