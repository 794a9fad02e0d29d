"""Trip update records: validation names the field and the reason; applying changes exactly what it says."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from features.generator import generate_trips
from features.trip_update import (
    TripState,
    TripUpdate,
    TripUpdateError,
    apply_update,
    decode_trip_update,
    encode_trip_update,
)

TRIP = generate_trips(n_trips=1, seed=3)[0]


def rec(**fields: object) -> bytes:
    return json.dumps({"v": 1, "op": "upsert", "trip_id": TRIP.trip_id, "ts": 1.0, **fields}).encode()


BAD = [
    (b"{not json", "payload: not JSON", "bad_json"),
    (b"[1, 2]", "payload: must be a JSON object, got list", "bad_json"),
    (
        json.dumps({"v": 2, "op": "upsert"}).encode(),
        "v: unsupported version 2; expected 1",
        "unknown_version",
    ),
    (rec(op="merge", set={"price": 1}), "op: must be 'upsert' or 'delete', got 'merge'", "invalid_field"),
    (rec(set={"price": -5}), "set.price: must be >= 0, got -5", "invalid_field"),
    (rec(set={"price": "cheap"}), "set.price: must be a number, got str", "invalid_field"),
    (rec(set={"price": True}), "set.price: must be a number, got bool", "invalid_field"),
    (rec(set={"status": 3}), "set.status: must be a string, got int", "invalid_field"),
    (rec(set={"status": "sold"}), "set.status: unknown status 'sold'", "invalid_field"),
    (rec(set={"available": "no"}), "set.available: must be true or false, got str", "invalid_field"),
    (rec(set={"departure_date": "2026-13-01"}), "set.departure_date: not a valid date", "invalid_field"),
    (rec(set={"difficulty": 3}), "set.difficulty: cannot be updated", "invalid_field"),
    (rec(set={}), "set: must change at least one field", "invalid_field"),
    (rec(), "set: an upsert carries exactly one of", "invalid_field"),
    (rec(set={"popularity": 1.5}), "set.popularity: must be <= 1, got 1.5", "invalid_field"),
    (rec(trip_id="OTHER", set={"price": 1}), "trip_id: must equal the record key", "key_mismatch"),
    (rec(trip={**TRIP.to_dict(), "price": -1}), "trip.price: must be >= 0, got -1", "invalid_field"),
    (
        rec(ts=1.7e12, set={"price": 1}),
        "ts: must be seconds since the epoch (before 2100), got 1.7e+12",
        "invalid_field",
    ),
    (b"x" * 70_000, "payload: must be at most 65536 bytes", "too_large"),
]


@pytest.mark.parametrize(("value", "message", "reason"), BAD)
def test_bad_records_name_field_and_reason(value: bytes, message: str, reason: str) -> None:
    with pytest.raises(TripUpdateError) as info:
        decode_trip_update(TRIP.trip_id.encode(), value)
    assert str(info.value).startswith(message)
    assert info.value.reason == reason


def test_tombstone_is_a_delete_and_needs_a_key() -> None:
    assert decode_trip_update(b"T7", None) == TripUpdate("delete", "T7", 0.0)
    with pytest.raises(TripUpdateError, match="tombstone needs the trip_id"):
        decode_trip_update(None, None)


def test_patch_applies_only_the_named_fields() -> None:
    trips = {TRIP.trip_id: TripState(TRIP)}
    update = decode_trip_update(
        None, rec(set={"status": "last_places", "price": 999, "departure_date": "2026-09-01"})
    )
    assert apply_update(trips, update) == "updated"
    new = trips[TRIP.trip_id]
    assert (new.trip.status, new.trip.price, new.trip.departure_date) == (
        "last_places",
        999.0,
        dt.date(2026, 9, 1),
    )
    assert new.trip.title == TRIP.title and new.trip.themes == TRIP.themes and new.available
    assert apply_update(trips, update) == "unchanged"


def test_unknown_trip_is_rejected_and_changes_nothing() -> None:
    trips = {TRIP.trip_id: TripState(TRIP)}
    before = dict(trips)
    for update in (TripUpdate("upsert", "NOPE", 1.0, {"price": 1.0}), TripUpdate("delete", "NOPE", 1.0)):
        with pytest.raises(TripUpdateError) as info:
            apply_update(trips, update)
        assert info.value.reason == "unknown_trip"
    assert trips == before


def test_whole_record_inserts_replaces_and_round_trips() -> None:
    trips: dict[str, TripState] = {}
    new = TripUpdate("upsert", TRIP.trip_id, 5.0, trip=TripState(TRIP, available=False))
    decoded = decode_trip_update(TRIP.trip_id.encode(), encode_trip_update(new))
    assert decoded == new
    assert apply_update(trips, decoded) == "inserted"
    assert trips[TRIP.trip_id] == TripState(TRIP, available=False)
    assert apply_update(trips, TripUpdate("delete", TRIP.trip_id, 6.0)) == "deleted"
    assert trips == {}


def test_patch_round_trips_through_encoding() -> None:
    update = TripUpdate("upsert", "T1", 2.0, {"departure_date": dt.date(2026, 5, 1), "available": False})
    assert decode_trip_update(b"T1", encode_trip_update(update)) == update
