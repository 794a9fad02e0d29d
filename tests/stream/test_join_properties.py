"""Properties of the session join: positives are exactly the distinct valid clicks.

Random sessions (slates sharing trips, clicks with, without or with a bogus
request id, saves, duplicates) are checked against a small oracle of which
``(request, trip)`` pairs a click should join.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.events import Example, Impression, Interaction, InteractionType
from stream.join import Counted, DeadLettered, JoinConfig, Outcome, SessionJoin
from tests.stream.test_join import T0, Event, examples, feed, imp

WINDOW = 600.0
TRIPS = ["t0", "t1", "t2", "t3", "t4", "t5"]


@st.composite
def sessions(draw: st.DrawFn, *, allow_no_request: bool) -> list[Event]:
    """Random sessions: slates sharing trips, valid and invalid clicks, saves, duplicates."""
    events: list[Event] = []
    for s in range(draw(st.integers(1, 3))):
        sid = f"s{s}"
        offsets = sorted(set(draw(st.lists(st.integers(0, 1500), min_size=1, max_size=3))))
        slates = [
            imp(
                f"{sid}r{j}",
                draw(st.lists(st.sampled_from(TRIPS), min_size=1, max_size=4, unique=True)),
                T0 + off,
                sid,
            )
            for j, off in enumerate(offsets)
        ]
        events += slates
        if draw(st.booleans()):
            events.append(draw(st.sampled_from(slates)))  # duplicate impression
        modes = ["request", "none", "bogus"] if allow_no_request else ["request", "bogus"]
        for k in range(draw(st.integers(0, 10))):
            target = draw(st.sampled_from(slates))
            shown = [item.trip_id for item in target.slate]
            trip = draw(st.sampled_from(shown) | st.sampled_from(TRIPS))
            mode = draw(st.sampled_from(modes))
            rid = {"request": target.request_id, "none": None, "bogus": f"{sid}ghost"}[mode]
            kind: InteractionType = draw(st.sampled_from(["click", "click", "click", "save"]))
            ts = target.ts + draw(st.floats(-10.0, WINDOW + 100.0) | st.floats(WINDOW - 25.0, WINDOW + 25.0))
            ev = Interaction(f"{sid}e{k}", sid, trip, kind, ts, 0.0, rid)
            events += [ev, ev] if draw(st.integers(0, 4)) == 0 else [ev]
    return events


def valid_clicks(events: Sequence[Event]) -> set[tuple[str, str]]:
    """Oracle: the distinct (request, trip) pairs that clicks should join."""
    imps = {e.request_id: e for e in events if isinstance(e, Impression)}
    pairs: set[tuple[str, str]] = set()
    for ev in events:
        if not isinstance(ev, Interaction) or ev.type != "click":
            continue
        if ev.request_id is not None:
            shown = imps.get(ev.request_id)
            if shown and ev.trip_id in {s.trip_id for s in shown.slate} and ev.ts <= shown.ts + WINDOW:
                pairs.add((ev.request_id, ev.trip_id))
            continue
        candidates = [
            i
            for i in imps.values()
            if i.session_id == ev.session_id
            and ev.trip_id in {s.trip_id for s in i.slate}
            and i.ts <= ev.ts <= i.ts + WINDOW
        ]
        if candidates:
            pairs.add((max(candidates, key=lambda i: i.ts).request_id, ev.trip_id))
    return pairs


def run(events: Sequence[Event], arrival: Sequence[float]) -> tuple[SessionJoin, list[Outcome]]:
    join = SessionJoin(config=JoinConfig(window_s=WINDOW, watermark_delay_s=5.0, grace_s=30.0))
    order = sorted(range(len(events)), key=lambda i: (arrival[i], isinstance(events[i], Interaction), i))
    out = feed(join, *(events[i] for i in order))
    return join, out + join.flush()


@settings(max_examples=150, deadline=None)
@given(sessions(allow_no_request=True))
def test_positives_equal_distinct_valid_clicks_in_time_order(events: list[Event]) -> None:
    _, out = run(events, [e.ts for e in events])
    got = examples(out)
    assert not any(e.is_correction for e in got)  # in order: nothing arrives after its window closed
    assert sum(e.clicked for e in got) == len(valid_clicks(events))
    assert {(e.request_id, e.trip_id) for e in got if e.clicked} == valid_clicks(events)
    distinct = {e.request_id: e for e in events if isinstance(e, Impression)}
    assert len(got) == sum(len(i.slate) for i in distinct.values())
    # counted, not lost: every interaction is attached, a duplicate, or dead-lettered
    fed = sum(isinstance(e, Interaction) for e in events)
    names = [o.name for o in out if isinstance(o, Counted)]
    dead = sum(isinstance(o, DeadLettered) for o in out)
    assert (
        fed
        == names.count("attached")
        + names.count("late_attached")
        + names.count("duplicate_interaction")
        + dead
    )


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_final_view_is_exact_with_out_of_order_arrival(data: st.DataObject) -> None:
    # arrival jitter up to 20 s > watermark delay 5 s: some clicks arrive after their window
    # closed and become corrections; jitter − delay stays within grace and lateness, so none is lost
    events = data.draw(sessions(allow_no_request=False))
    arrival = [e.ts + data.draw(st.sampled_from([0.0, 20.0]) | st.floats(0.0, 20.0)) for e in events]
    _, out = run(events, arrival)
    final: dict[str, Example] = {}
    for ex in examples(out):
        if ex.example_id not in final or ex.revision > final[ex.example_id].revision:
            final[ex.example_id] = ex
    assert {(e.request_id, e.trip_id) for e in final.values() if e.clicked} == valid_clicks(events)
    assert sum(not e.is_correction for e in examples(out)) == len(final)
