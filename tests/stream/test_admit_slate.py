"""A closed slate admitted at once counts exactly as its examples admitted one by one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.stream_metrics import StreamMetrics
from stream.events import Interaction
from stream.quality_gate import QualityGate
from stream.traffic_filter import TrafficRules
from stream.user_cap import UserCap

slates = st.lists(
    st.tuples(st.sampled_from(["s1", "s2", "bot"]), st.sampled_from(["u1", "u2", "u3"]),
              st.floats(0.0, 100.0), st.integers(0, 12), st.integers(0, 2)),
    max_size=40,
)  # fmt: skip


def _gate() -> tuple[QualityGate, StreamMetrics, list[str]]:
    metrics = StreamMetrics()
    gate = QualityGate(rules=TrafficRules(max_clicks_per_slate=2), cap=UserCap(max_examples=7, window_s=30.0),
                       metrics=metrics)  # fmt: skip
    for k in range(4):  # flag the bot session: distinct clicks on one slate
        gate.observe(Interaction(f"e{k}", "bot", f"t{k}", "click", 1.0, request_id="rb"))
    capped: list[str] = []
    assert gate.cap is not None
    on_capped = gate.cap.on_capped
    assert on_capped is not None
    gate.cap.on_capped = lambda user: (capped.append(user), on_capped(user))[1]
    return gate, metrics, capped


@settings(max_examples=200, deadline=None)
@given(slates=slates)
def test_admit_slate_equals_admit_parts_per_example(slates: list[tuple[str, str, float, int, int]]) -> None:
    (one, m_one, capped_one), (many, m_many, capped_many) = _gate(), _gate()
    for session, user, ts, n, partition in slates:
        singles = [one.admit_parts(session, user, ts, partition) is None for _ in range(n)]
        k = many.admit_slate(session, user, ts, n, partition)
        assert singles == [True] * k + [False] * (n - k)
    assert one.dropped == many.dropped and capped_one == capped_many
    assert one.cap is not None and many.cap is not None and len(one.cap) == len(many.cap)
    for reason in ("user_cap", "click_flood"):
        labels = {"reason": reason}
        got = [
            m.registry.get_sample_value("smarttrip_stream_filtered_examples_total", labels)
            for m in (m_one, m_many)
        ]
        assert got[0] == got[1]


def test_a_flagged_session_and_a_capped_user() -> None:
    gate, _, capped = _gate()
    assert gate.admit_slate("bot", "u1", 1.0, 5) == 0
    assert gate.admit_slate("s1", "u1", 1.0, 5) == 5 and gate.admit_slate("s1", "u1", 2.0, 5) == 2
    assert gate.admit_slate("s1", "u1", 3.0, 5) == 0 and capped == ["u1"]
    assert gate.admit_slate("s1", "u1", 31.0, 5) == 5  # the next window
    assert gate.dropped == {next(iter(gate.flagged)): 5, "user_cap": 8}
