"""The session join: exact examples for hand-built sessions (properties: test_join_properties.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping, Sequence

import pytest

from stream.codec import encode
from stream.errors import EventError
from stream.events import Example, Impression, Interaction, InteractionType, Labels, SlateItem
from stream.join import Counted, DeadLettered, Emitted, JoinConfig, Outcome, SessionJoin, SessionState
from stream.join_runtime import RawRecord
from stream.session import apply_interaction

T0 = 1_700_000_000.0
Event = Impression | Interaction


def imp(rid: str, trips: Sequence[str], ts: float, sid: str = "s1") -> Impression:
    slate = tuple(SlateItem(t, i, 10.0 - i, 0.5, (1.0, float(i))) for i, t in enumerate(trips))
    return Impression(rid, sid, "u1", "family", "linucb", "m1", "phi-v1", ts, slate)


def act(
    eid: str,
    trip: str,
    ts: float,
    kind: InteractionType = "click",
    *,
    rid: str | None = None,
    sid: str = "s1",
    value: float = 0.0,
) -> Interaction:
    return Interaction(eid, sid, trip, kind, ts, value, rid)


def feed(join: SessionJoin, *events: Event, advance: bool = True) -> list[Outcome]:
    """Each event, then (by default) an advance to the derived watermark."""
    out: list[Outcome] = []
    for event in events:
        out += join.on_impression(event) if isinstance(event, Impression) else join.on_interaction(event)
        if advance:
            out += join.advance()
    return out


def brief(outcomes: Sequence[Outcome]) -> list[tuple[object, ...]]:
    """Compact view: examples (id, clicked, examined, reward, revision), dead letters, counters."""
    rows: list[tuple[object, ...]] = []
    for o in outcomes:
        match o:
            case Emitted(example=ex):
                rows.append(("ex", ex.example_id, ex.clicked, ex.examined, ex.reward, ex.revision))
            case DeadLettered(dead_letter=dl):
                original = json.loads(dl.excerpt())
                rows.append(("dead", dl.reason, original.get("event_id", original.get("request_id"))))
            case Counted(name=name):
                rows.append(("count", name))
    return rows


def examples(outcomes: Sequence[Outcome]) -> list[Example]:
    return [o.example for o in outcomes if isinstance(o, Emitted)]


def test_one_slate_exact_examples() -> None:
    join = SessionJoin()
    out = feed(
        join,
        imp("r1", ["t1", "t2", "t3", "t4", "t5"], T0),
        act("e1", "t3", T0 + 20, rid="r1"),
        act("e2", "t3", T0 + 60, "dwell", rid="r1", value=45.0),
    )
    assert out == [Counted("attached"), Counted("attached")]

    def ex(trip: str, pos: int, labels: Labels, reward: float, examined: bool) -> Example:
        return Example(
            f"r1:{trip}",
            "r1",
            trip,
            "s1",
            "u1",
            "family",
            "linucb",
            "m1",
            "phi-v1",
            (1.0, float(pos)),
            pos,
            0.5,
            reward,
            labels,
            labels.click > 0,
            examined,
            T0,
            0,
        )

    assert join.flush() == [
        Emitted(ex("t1", 0, Labels(), 0.0, True)),
        Emitted(ex("t2", 1, Labels(), 0.0, True)),
        Emitted(ex("t3", 2, Labels(click=1, dwell_s=45.0), 1.5, True)),
        Emitted(ex("t4", 3, Labels(), 0.0, True)),  # one past the last click
        Emitted(ex("t5", 4, Labels(), 0.0, False)),
    ]
    assert len(join) == 0


def test_multiple_slates_with_repeated_trips() -> None:
    join = SessionJoin()
    out = feed(
        join,
        imp("rA", ["t1", "t2", "t3"], T0),
        act("e1", "t1", T0 + 30),  # no request id: only rA showed t1 by then
        imp("rB", ["t3", "t4", "t1"], T0 + 60),
        act("e2", "t1", T0 + 90),  # no request id: the most recent slate showing t1 is rB
        act("e3", "t3", T0 + 100, rid="rA"),  # explicit request wins over recency
        act("e4", "t4", T0 + 120),
    )
    assert brief(out) == [("count", "attached")] * 4
    assert brief(join.flush()) == [
        ("ex", "rA:t1", True, True, 1.0, 0),
        ("ex", "rA:t2", False, True, 0.0, 0),
        ("ex", "rA:t3", True, True, 1.0, 0),
        ("ex", "rB:t3", False, True, 0.0, 0),
        ("ex", "rB:t4", True, True, 1.0, 0),
        ("ex", "rB:t1", True, True, 1.0, 0),
    ]


def test_clicks_and_other_engagement_at_several_positions() -> None:
    join = SessionJoin()
    feed(
        join,
        imp("r1", [f"t{i}" for i in range(7)], T0),
        act("e1", "t1", T0 + 5, rid="r1"),
        act("e2", "t1", T0 + 50, "dwell", rid="r1", value=40.0),
        act("e3", "t3", T0 + 60, rid="r1"),
        act("e4", "t3", T0 + 70, "save", rid="r1"),
        act("e5", "t4", T0 + 80, "booking_start", rid="r1"),  # engaged without a logged click
    )
    got = examples(join.flush())
    assert [(e.position, e.clicked, e.examined, e.reward) for e in got] == [
        (0, False, True, 0.0),
        (1, True, True, 1.5),
        (2, False, True, 0.0),
        (3, True, True, 2.0),
        (4, False, True, 5.0),
        (5, False, True, 0.0),  # last engaged rank 4, plus one
        (6, False, False, 0.0),
    ]
    assert got[3].labels == Labels(click=1, save=1)
    assert got[4].labels == Labels(booking_start=1)


def test_slate_without_clicks_marks_top_n_examined() -> None:
    join = SessionJoin(config=JoinConfig(no_click_examined_top_n=2))
    feed(join, imp("r1", ["a", "b", "c", "d"], T0))
    assert [(e.clicked, e.examined) for e in examples(join.flush())] == [
        (False, True),
        (False, True),
        (False, False),
        (False, False),
    ]


def test_duplicate_events_and_impressions_are_dropped_and_counted() -> None:
    join = SessionJoin()
    click = act("e1", "b", T0 + 10, rid="r1")
    out = feed(join, imp("r1", ["a", "b"], T0), click, click, imp("r1", ["a", "b"], T0), click)
    assert brief(out) == [
        ("count", "attached"),
        ("count", "duplicate_interaction"),
        ("count", "duplicate_impression"),
        ("count", "duplicate_interaction"),
    ]
    got = examples(join.flush())
    assert len(got) == 2
    assert got[1].labels == Labels(click=1)


def test_interaction_before_its_impression_waits_for_grace() -> None:
    join = SessionJoin()
    out = feed(
        join,
        act("e1", "b", T0 + 3, rid="r1"),
        act("e2", "a", T0 + 4),  # no request id: waits for any slate showing "a"
        imp("r1", ["a", "b", "c"], T0),
    )
    assert brief(out) == [("count", "held"), ("count", "held"), ("count", "attached"), ("count", "attached")]
    assert [e.clicked for e in examples(join.flush())] == [True, True, False]


def test_orphan_is_dead_lettered_when_grace_ends() -> None:
    join = SessionJoin()  # grace 30 s
    assert brief(feed(join, act("e1", "b", T0 + 10, rid="ghost"), advance=False)) == [("count", "held")]
    assert join.advance(T0 + 40) == []  # deadline T0+40 not passed yet
    assert brief(join.advance(T0 + 40.5)) == [("dead", "orphan", "e1")]
    assert len(join) == 0


def test_late_click_emits_corrections_of_what_changed() -> None:
    join = SessionJoin()  # window 600 s, allowed lateness 300 s
    feed(join, imp("r1", ["a", "b", "c", "d", "e"], T0), act("e1", "a", T0 + 10, rid="r1"))
    assert brief(join.advance(T0 + 601)) == [
        ("ex", "r1:a", True, True, 1.0, 0),
        ("ex", "r1:b", False, True, 0.0, 0),
        ("ex", "r1:c", False, False, 0.0, 0),
        ("ex", "r1:d", False, False, 0.0, 0),
        ("ex", "r1:e", False, False, 0.0, 0),
    ]
    # a straggler click at position 3, inside the window by event time
    assert brief(feed(join, act("e2", "d", T0 + 590, rid="r1"), advance=False)) == [
        ("count", "late_attached"),
        ("ex", "r1:c", False, True, 0.0, 1),
        ("ex", "r1:d", True, True, 1.0, 1),
        ("ex", "r1:e", False, True, 0.0, 1),
    ]
    # another one on the same trip, without a request id: only that example changes (2 clicks)
    out = feed(join, act("e3", "d", T0 + 595), advance=False)
    assert brief(out) == [("count", "late_attached"), ("ex", "r1:d", True, True, 1.0, 2)]
    assert examples(out)[0].is_correction
    assert examples(out)[0].labels == Labels(click=2)


def test_too_late_events_are_dead_lettered() -> None:
    join = SessionJoin()
    feed(join, imp("r1", ["a", "b"], T0))
    assert len(join.advance(T0 + 600 + 300 + 1)) == 2  # closed, then forgotten past lateness
    assert len(join) == 0
    out = feed(join, act("e1", "a", T0 + 100, rid="r1"), imp("r0", ["a"], T0 - 5), advance=False)
    assert brief(out) == [("dead", "too_late", "e1"), ("dead", "too_late", "r0")]


def test_clicks_outside_window_or_slate_are_dead_lettered() -> None:
    join = SessionJoin()
    out = feed(
        join,
        imp("r1", ["a", "b"], T0),
        act("e1", "a", T0 + 601, rid="r1"),
        act("e2", "zzz", T0 + 5, rid="r1"),
        act("e3", "a", T0 + 6, rid="r1", sid="s2"),
        imp("r1", ["x"], T0 + 7, sid="s3"),
        advance=False,
    )
    assert brief(out) == [
        ("dead", "outside_window", "e1"),
        ("dead", "not_in_slate", "e2"),
        ("dead", "session_mismatch", "e3"),
        ("dead", "session_mismatch", "r1"),
    ]
    letters = [o.dead_letter for o in out if isinstance(o, DeadLettered)]
    assert [(d.stage, d.source_topic) for d in letters] == [("join", "interactions")] * 3 + [
        ("join", "impressions")
    ]
    assert letters[2].detail == "request 'r1' belongs to session 's1', not 's2'"


def test_open_slates_and_held_interactions_are_bounded() -> None:
    join = SessionJoin(config=JoinConfig(max_open_slates=1, max_held=2))
    out = feed(join, imp("r1", ["a"], T0), imp("r2", ["b"], T0 + 1), advance=False)
    assert brief(out) == [("ex", "r1:a", False, True, 0.0, 0), ("count", "forced_close")]
    out = feed(join, *(act(f"e{i}", "a", T0 + 2, rid=f"ghost{i}") for i in range(3)), advance=False)
    assert brief(out) == [("count", "held"), ("count", "held"), ("count", "held"), ("dead", "orphan", "e0")]


def test_watermark_is_max_ts_minus_delay_and_never_goes_back() -> None:
    join = SessionJoin(config=JoinConfig(watermark_delay_s=5.0))
    assert join.watermark == float("-inf")
    feed(join, imp("r1", ["a"], T0 + 100), imp("r2", ["a"], T0 + 50))
    assert (join.max_ts, join.watermark) == (T0 + 100, T0 + 95)
    join.advance(T0)
    assert join.watermark == T0 + 95


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match=r"^JoinConfig\.window_s: must be > 0, got 0$"):
        JoinConfig(window_s=0)
    with pytest.raises(ValueError, match=r"^JoinConfig\.grace_s: must be >= 0, got -1$"):
        JoinConfig(grace_s=-1)
    with pytest.raises(ValueError, match=r"^JoinConfig\.max_held: must be >= 1, got 0$"):
        JoinConfig(max_held=0)


class JsonTable(MutableMapping[str, SessionState]):
    """Stand-in for a Faust table: values live as JSON text, so only written-back changes survive."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0

    def __getitem__(self, key: str) -> SessionState:
        return SessionState.from_dict(json.loads(self.data[key]))

    def __setitem__(self, key: str, value: SessionState) -> None:
        self.writes += 1
        self.data[key] = json.dumps(value.to_dict())

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.data))

    def __len__(self) -> int:
        return len(self.data)


SCRIPT: list[Event] = [
    imp("rA", ["t1", "t2", "t3"], T0),
    act("e0", "t9", T0 + 1, rid="rC"),
    act("e1", "t1", T0 + 30),
    imp("rB", ["t3", "t4", "t1"], T0 + 60, sid="s2"),
    act("e2", "t1", T0 + 90, rid="rB", sid="s2"),
    act("e3", "t3", T0 + 100, rid="rA"),
    imp("rC", ["t9"], T0 + 2),
    act("e4", "t4", T0 + 650, sid="s2"),
    act("e5", "t2", T0 + 580, rid="rA"),
    imp("rD", ["t5"], T0 + 1200),
]


def script_records() -> list[RawRecord]:
    """SCRIPT as the join worker reads it: one input partition, keyed by session."""
    return [
        RawRecord(
            "impressions" if isinstance(e, Impression) else "interactions",
            0,
            e.session_id.encode(),
            encode(e),
        )
        for e in SCRIPT
    ]


def test_json_backed_store_and_restart_give_the_same_outcomes() -> None:
    reference = SessionJoin()
    expected = feed(reference, *SCRIPT) + reference.flush()

    table = JsonTable()
    first = SessionJoin(store=table)
    got = feed(first, *SCRIPT[:6])
    restarted = SessionJoin(store=table)  # as after a crash: rebuilt from the table alone
    got += feed(restarted, *SCRIPT[6:]) + restarted.flush()
    assert got == expected
    assert any(isinstance(o, Emitted) and o.example.is_correction for o in got)
    assert table.writes > 0
    assert len(table) == 0


def test_state_round_trips_and_rejects_unknown_versions() -> None:
    join = SessionJoin()
    feed(join, imp("r1", ["a", "b"], T0), act("e1", "a", T0 + 1, rid="r1"), act("e2", "x", T0 + 2, rid="r9"))
    join.advance(T0 + 700)
    state = join.state("s1")
    assert state is not None
    assert state.slates[0].closed
    assert state.held == ()
    assert SessionState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    with pytest.raises(EventError, match=r"^state\.v: unsupported state version 2$"):
        SessionState.from_dict(state.to_dict() | {"v": 2})
    bad = state.to_dict()
    bad["slates"][0]["impression"]["slate"][0]["propensity"] = 2  # type: ignore[index]
    with pytest.raises(
        EventError, match=r"^state\.slates\[0\]\.impression\.slate\[0\]\.propensity: must be in"
    ):
        SessionState.from_dict(bad)


def test_pure_step_returns_new_state_and_leaves_the_old_one_alone() -> None:
    cfg = JoinConfig()
    click = act("e1", "a", T0 + 1)
    first, out = apply_interaction(None, click, watermark=T0, config=cfg)
    assert out == [Counted("held")]
    assert first is not None
    second, out = apply_interaction(first, click, watermark=T0, config=cfg)
    assert (second, out) == (first, [Counted("duplicate_interaction")])
    again, _ = apply_interaction(first, act("e2", "a", T0 + 2), watermark=T0, config=cfg)
    assert again is not None
    assert (len(first.held), len(again.held)) == (1, 2)
