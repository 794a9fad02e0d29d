"""SessionJoin's inline path for an impression that opens a session equals the general one."""

from __future__ import annotations

from stream.events import Impression
from stream.join import JoinConfig, Outcome, SessionJoin
from stream.packed_impression import PackedImpression
from tests.stream.test_join import SCRIPT, T0, Event, act, imp


def _run(events: list[Event], packed: bool, *, flush: bool = True) -> tuple[list[Outcome], SessionJoin]:
    join = SessionJoin(config=JoinConfig(window_s=600.0, allowed_lateness_s=300.0))
    out: list[Outcome] = []
    for e in events:
        if isinstance(e, Impression):
            # an Impression record takes the general path (apply_impression, then _save)
            out += join.on_impression(PackedImpression.of(e) if packed else e)
        else:
            out += join.on_interaction(e)
        out += join.advance()
    return out + (join.flush() if flush else []), join


def test_first_slates_of_sessions_give_the_same_outcomes_state_and_index() -> None:
    events: list[Event] = [
        *SCRIPT,
        imp("rE", ["t1"], T0 + 5000, sid="s3"),  # a new session after the others closed
        act("e9", "t1", T0 + 5001, rid="rE", sid="s3"),
        imp("rF", ["t2"], T0 + 10, sid="s4"),  # a new session past its lateness: dead letter
        imp("rE", ["t1"], T0 + 5002, sid="s5"),  # a request of another session: mismatch
    ]
    general, fast = _run(events, packed=False), _run(events, packed=True)
    assert fast[0] == general[0]
    assert any(getattr(o, "dead_letter", None) is not None for o in fast[0])
    # mid-run, too: states, request index, deadlines
    half = [_run(events[:k], packed, flush=False)[1] for packed in (False, True) for k in (4, 12)]
    for g, f in ((half[0], half[2]), (half[1], half[3])):
        states = {k: g.state(k) for k in ("s1", "s2", "s3")}
        assert any(states.values()) and states == {k: f.state(k) for k in ("s1", "s2", "s3")}
        assert g._owner == f._owner and g._deadline == f._deadline
        assert sorted(g._heap) == sorted(f._heap)
