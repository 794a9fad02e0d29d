"""The join's packed impressions: exact, decoded like the careful path, compact in the changelog."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.codec import decode_impression, encode
from stream.errors import EventError
from stream.events import Impression, SlateItem
from stream.join import Emitted, JoinConfig, SessionJoin, SessionState
from stream.join_runtime import TableStore
from stream.labeling import examples_of
from stream.packed_impression import PackedImpression, decode_packed_impression
from stream.session import EmittedSlate
from stream.synthetic import synthetic_sessions
from tests.stream.test_join import SCRIPT, feed

T0 = 1_700_000_000.0

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@st.composite
def impressions(draw: st.DrawFn) -> Impression:
    n = draw(st.integers(1, 6))
    dim = draw(st.integers(0, 5))
    trips = draw(st.lists(ids, min_size=n, max_size=n, unique=True))
    positions = draw(st.lists(st.integers(0, 99_999), min_size=n, max_size=n, unique=True))
    slate = tuple(
        SlateItem(
            trip,
            pos,
            draw(finite),
            draw(st.floats(1e-9, 1.0)),
            tuple(draw(st.lists(finite | st.just(-0.0), min_size=dim, max_size=dim))),
            draw(st.booleans()),
        )
        for trip, pos in zip(trips, positions, strict=True)
    )
    names = tuple(f"f{k}" for k in range(dim)) if draw(st.booleans()) else ()
    catalog = draw(st.none() | ids) if dim else draw(ids)
    return Impression(
        draw(ids), draw(ids), draw(ids), draw(ids), "rules", "m1", "phi-v1",
        draw(st.floats(1.0, 4.1e9)), slate, names, catalog,
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(impressions())
def test_packing_is_exact_and_the_fast_decoder_equals_the_careful_one(imp: Impression) -> None:
    raw = encode(imp)
    careful = decode_impression(raw)
    packed = decode_packed_impression(raw)
    assert packed == PackedImpression.of(careful)
    assert packed.impression() == careful == imp
    assert [orjson.dumps(r) for r in packed.rows()] == [orjson.dumps(s.phi) for s in imp.slate]  # -0.0 too
    assert PackedImpression.from_compact(orjson.loads(orjson.dumps(packed.to_compact())), "i") == packed
    assert orjson.dumps(packed.compact_fields()) == orjson.dumps(packed.to_compact())  # the changelog's bytes
    assert examples_of(packed, []) == examples_of(imp, [])


@settings(max_examples=60, deadline=None)
@given(impressions())
def test_rows_unpack_the_buffer_as_a_memoryview_of_doubles_does(imp: Impression) -> None:
    packed = PackedImpression.of(imp)
    d, values = packed.dim, memoryview(packed.phi).cast("d")
    reference = [tuple(values[k * d : (k + 1) * d]) for k in range(len(packed))]
    rows = packed.rows()
    assert [orjson.dumps(r) for r in rows] == [orjson.dumps(r) for r in reference]  # bit for bit, -0.0 too
    assert all(type(r) is tuple for r in rows) and [packed.row(k) for k in range(len(packed))] == rows


def test_fast_decoder_takes_numbers_as_the_careful_one_does() -> None:
    records, _ = synthetic_sessions(n_sessions=50, seed=4, t0=time.time())
    for r in records:
        if r.topic == "impressions":
            assert decode_packed_impression(r.value) == PackedImpression.of(decode_impression(r.value))
    value = orjson.loads(records[0].value)
    value["slate"][0]["phi"][0] = 3  # an integer in φ, a huge one in the score
    value["slate"][1]["score"] = 18446744073709551616
    value["slate"][2]["phi"][:4] = [1.0, 0.0, 1, 0]  # the values booleans would pack to: numbers all the same
    raw = json.dumps(value).encode()
    assert decode_packed_impression(raw).impression() == decode_impression(raw)
    assert decode_packed_impression(raw).scores[1] == 18446744073709551616.0


def _bad(path: list[Any], new: object) -> bytes:
    records, _ = synthetic_sessions(n_sessions=1, seed=5, t0=T0)
    value = orjson.loads(records[0].value)
    target = value
    for key in path[:-1]:
        target = target[key]
    if new is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return json.dumps(value).encode()  # json: NaN can be written


@pytest.mark.parametrize(
    ("path", "new"),
    [
        (["slate", 0, "phi", 1], True),
        (["slate", 4, "phi", 19], False),
        (["slate", 9, "phi", 0], True),
        (["slate", 0, "phi", 1], None),
        (["slate", 0, "phi", 1], "0.5"),
        (["slate", 0, "phi", 1], float("nan")),
        (["slate", 2, "phi"], [1.0]),
        (["slate", 2, "phi"], KeyError),
        (["slate", 1, "position"], True),
        (["slate", 1, "position"], 0),
        (["slate", 1, "position"], -1),
        (["slate", 1, "trip_id"], ""),
        (["slate", 1, "trip_id"], "x" * 129),
        (["slate", 3, "propensity"], 0),
        (["slate", 3, "propensity"], 1.5),
        (["slate", 3, "score"], False),
        (["slate", 3, "randomized"], None),
        (["slate", 3, "randomized"], 1),
        (["slate", 3], "t1"),
        (["slate"], []),
        (["phi_names"], ["a", "a"]),
        (["phi_names"], ["a"]),
        (["v"], True),
        (["v"], 2),
        (["kind"], "interaction"),
        (["ts"], 1.7e12),
        (["ts"], False),
        (["user_id"], 7),
        (["request_id"], ""),
        (["segment"], "x" * 129),
        (["feature_version"], None),
        (["catalog_version"], ""),
    ],
)
def test_fast_decoder_leaves_errors_to_the_careful_one(path: list[Any], new: object) -> None:
    raw = _bad(path, new)
    with pytest.raises(EventError) as careful:
        decode_impression(raw)
    with pytest.raises(EventError) as fast:
        decode_packed_impression(raw)
    assert (str(fast.value), fast.value.reason) == (str(careful.value), careful.value.reason)


def test_compact_impression_is_validated_and_names_the_field() -> None:
    records, _ = synthetic_sessions(n_sessions=1, seed=6, t0=T0)
    good = decode_packed_impression(records[0].value).to_compact()
    cases = [
        ({"phi64": "***"}, r"^i\.phi64: must be base64$"),
        ({"phi64": "AAAA"}, r"^i\.phi64: must hold 10 x 20 float64 values, got 3 bytes$"),
        ({"scores": [1.0]}, r"^i\.scores: must have 10 entries like i\.trips, got 1$"),
        ({"propensities": [2.0] * 10}, r"^i\.slate\[0\]\.propensity: must be in \(0, 1\], got 2$"),
        ({"dim": -1}, r"^i\.dim: must be in \[0, 256\], got -1$"),
    ]
    for change, message in cases:
        with pytest.raises(EventError, match=message):
            PackedImpression.from_compact(good | change, "i")


def test_compact_state_round_trips_and_the_store_keeps_objects() -> None:
    join = SessionJoin()
    feed(join, *SCRIPT[:6])
    join.advance(T0 + 700)  # closes rA (clicked), keeps its slate for late clicks
    states = {sid: join.state(sid) for sid in ("s1", "s2")}
    for state in states.values():
        assert state is not None
        assert SessionState.from_dict(orjson.loads(orjson.dumps(state.to_compact()))) == state
        assert state.compact_json() == orjson.dumps(state.to_compact())  # what the store writes
        assert SessionState.from_dict(state.to_dict()) == state  # the readable form still loads
    assert any(s.closed for st_ in states.values() if st_ for s in st_.slates)

    table: dict[str, bytes | SessionState] = {}
    store = TableStore(table, ())
    for sid, state in states.items():
        assert state is not None
        store[sid] = state
    changes = dict(store.flush())
    assert all(table[sid] is states[sid] for sid in states)  # no second copy as bytes
    recovered: dict[str, bytes | SessionState] = {k: v for k, v in changes.items() if v is not None}
    assert {k: TableStore(recovered, [k])[k] for k in recovered} == states


def test_restart_from_compact_changelog_bytes_gives_the_same_outcomes() -> None:
    reference = SessionJoin()
    expected = feed(reference, *SCRIPT) + reference.flush()
    table: dict[str, bytes | SessionState] = {}
    store = TableStore(table, ())
    first = SessionJoin(store=store)
    got = feed(first, *SCRIPT[:6])
    log = dict(store.flush())  # what the changelog holds
    recovered: dict[str, bytes | SessionState] = {k: v for k, v in log.items() if v is not None}
    restarted = SessionJoin(store=TableStore(recovered, list(recovered)))
    got += feed(restarted, *SCRIPT[6:]) + restarted.flush()
    assert got == expected
    assert any(isinstance(o, Emitted) and o.example.is_correction for o in got)


def test_lazy_slates_stand_for_exactly_the_examples_of_the_eager_join() -> None:
    eager = SessionJoin()
    lazy = SessionJoin(config=JoinConfig(lazy_examples=True))
    expected = feed(eager, *SCRIPT) + eager.flush()
    got = feed(lazy, *SCRIPT) + lazy.flush()
    expanded = [Emitted(ex) for o in got for ex in (o.examples() if isinstance(o, EmittedSlate) else [])]
    assert expanded == [o for o in expected if isinstance(o, Emitted)]
    assert [o for o in got if not isinstance(o, EmittedSlate)] == [
        o for o in expected if not isinstance(o, Emitted)
    ]
    assert any(ex.example.is_correction for ex in expanded)
