"""Bot rules, the user cap, the quality gate in the join worker's runtime, and their settings."""

from __future__ import annotations

import pytest

from monitoring.stream_metrics import StreamMetrics
from stream.codec import decode_examples, encode
from stream.events import Impression, Interaction, SlateItem
from stream.join_runtime import JoinRuntime, RawRecord
from stream.quality_gate import QualityGate
from stream.settings import SettingsError, StreamSettings
from stream.traffic_filter import TrafficFilter, TrafficRules
from stream.user_cap import UserCap

PHI = (1.0, 0.0)


def _imp(request: str, session: str, ts: float, n: int = 10, user: str = "u1") -> Impression:
    slate = tuple(SlateItem(f"t{i}", i, 0.0, 1.0, PHI) for i in range(n))
    return Impression(request, session, user, "general", "rules", "m0", "phi-v1", ts, slate)


def _click(event: str, session: str, trip: str, ts: float, request: str | None = None) -> Interaction:
    return Interaction(event, session, trip, "click", ts, request_id=request)


def test_each_rule_flags_its_pattern_and_a_human_session_passes() -> None:
    rules = TrafficRules(max_fast_clicks=3, max_clicks_per_slate=4, min_slates_for_share=4, max_session_s=100.0,
                         max_slates=6)  # fmt: skip
    f = TrafficFilter(rules)
    # human: 5 slates, one click on two of them, seconds apart
    for k in range(5):
        f.observe_impression(_imp(f"h{k}", "human", 10.0 * k))
    f.observe_interaction(_click("h-e1", "human", "t1", 3.0, "h0"))
    f.observe_interaction(_click("h-e2", "human", "t4", 25.0, "h2"))
    # fast: 5 clicks 50 ms apart over two slates (at most 3 per slate)
    f.observe_impression(_imp("f0", "fast", 0.0))
    f.observe_impression(_imp("f1", "fast", 0.0))
    for k in range(5):
        f.observe_interaction(_click(f"f-e{k}", "fast", f"t{k % 3}", 1.0 + 0.05 * k, f"f{k % 2}"))
    # flood: 5 trips of one slate, seconds apart
    f.observe_impression(_imp("c0", "flood", 0.0))
    for k in range(5):
        f.observe_interaction(_click(f"c-e{k}", "flood", f"t{k}", 2.0 * k, "c0"))
    # click-through: a click on each of 4 slates
    for k in range(4):
        f.observe_impression(_imp(f"x{k}", "through", 10.0 * k))
        f.observe_interaction(_click(f"x-e{k}", "through", "t0", 10.0 * k + 3, f"x{k}"))
    # long: 150 s of event time; many: 7 slates
    f.observe_impression(_imp("l0", "long", 0.0))
    f.observe_impression(_imp("l1", "long", 150.0))
    for k in range(7):
        f.observe_impression(_imp(f"m{k}", "many", float(k)))
    got = {s: f.verdict(s) for s in ("human", "fast", "flood", "through", "long", "many")}
    assert got == {"human": None, "fast": "fast_clicks", "flood": "click_flood", "through": "click_through",
                   "long": "long_session", "many": "many_slates"}  # fmt: skip


def test_repeated_events_are_not_counted_twice_and_state_expires() -> None:
    flagged: list[tuple[str, str]] = []
    f = TrafficFilter(
        TrafficRules(max_clicks_per_slate=1, state_ttl_s=60.0), on_flag=lambda s, r: flagged.append((s, r))
    )
    f.observe_impression(_imp("r1", "s1", 0.0))
    for _ in range(3):  # redelivered: the same event id
        f.observe_interaction(_click("e1", "s1", "t1", 1.0, "r1"))
    assert f.verdict("s1") is None
    f.observe_interaction(_click("e2", "s1", "t2", 5.0, "r1"))
    assert f.verdict("s1") == "click_flood" and flagged == [("s1", "click_flood")]
    f.observe_impression(_imp("r9", "s9", 30.0))
    assert len(f) == 2
    f.observe_impression(_imp("r10", "s10", 66.0))  # s1 idle for more than 60 s of event time: forgotten
    assert f.verdict("s1") is None and len(f) == 2
    f.observe_impression(_imp("r11", "s11", 67.0), partition=3)
    assert f.retain({0}) == 1 and len(f) == 2 and f.retain({0}) == 0  # partition 3 revoked


def test_user_cap_admits_at_most_the_cap_per_window_and_forgets_old_users() -> None:
    capped: list[str] = []
    cap = UserCap(max_examples=3, window_s=10.0, on_capped=capped.append)
    admitted = [cap.admit("u1", t) for t in (0.0, 1.0, 2.0, 3.0, 9.9)]
    assert admitted == [True, True, True, False, False] and capped == ["u1"]
    assert cap.admit("u2", 5.0) and cap.admit("u1", 10.0)  # a new window
    assert not cap.admit("u1", 4.0)  # late: counted in its own window, which is full
    assert cap.admit("u1", 11.0) and cap.admit("u1", 12.0) and not cap.admit("u1", 13.0)
    assert len(cap) == 3  # u1, u2 of window 0 (kept for stragglers), u1 of window 1
    cap.admit("u3", 25.0)
    assert len(cap) == 2  # window 0 is forgotten: u1 of window 1, u3
    assert cap.admit("u1", 4.0)  # a window forgotten: a fresh count
    assert UserCap(max_examples=0).admit("u", 0.0)
    with pytest.raises(ValueError, match=r"UserCap\.window_s"):
        UserCap(window_s=0.0)
    with pytest.raises(ValueError, match=r"TrafficRules\.max_clicked_slate_share"):
        TrafficRules(max_clicked_slate_share=1.5)


def test_a_watermark_driven_cap_sums_the_partitions_and_forgets_each_ones_windows_on_its_own() -> None:
    cap = UserCap(max_examples=3, window_s=10.0, self_clocked=False)
    assert cap.admit_many("u1", 1.0, 2, partition=0) == 2
    assert cap.admit_many("u1", 2.0, 5, partition=1) == 1  # a window's count is the partitions' sum
    for w in range(1, 6):  # later windows arrive on partition 0 ...
        cap.admit(f"v{w}", 10.0 * w, partition=0)
    assert not cap.admit("u1", 4.0, partition=1)  # ... without expire nothing is forgotten
    assert len(cap) == 7
    assert cap.expire(0, 9.9) == 0 and cap.expire(0, 10.0) == 1 and len(cap) == 6  # window 0 ends at 10
    # partition 0's share of window 0 is gone, partition 1 still emits window 0: the bound loosens under drift
    assert cap.admit_many("u1", 5.0, 5, partition=1) == 2
    assert cap.expire(1, 35.0) == 1 and cap.expire(0, 35.0) == 2 and len(cap) == 3
    assert cap.expire(0, float("-inf")) == 0 and cap.expire(7, 100.0) == 0
    cap.admit("u2", 40.0, partition=1)
    assert cap.retain({0}) == 1 and len(cap) == 3 and cap.retain({0}) == 0  # partition 1 revoked
    gate = QualityGate(cap=UserCap(max_examples=2, window_s=10.0), watermark_expiry=True)
    assert gate.cap is not None and not gate.cap.self_clocked
    gate.admit_parts("s", "u", 1.0, partition=2)
    gate.admit_parts("s", "w", 100.0, partition=2)
    assert len(gate.cap) == 2 and gate.expire_cap(1, 50.0) == 0 and gate.expire_cap(2, 50.0) == 1


def test_the_join_runtime_never_emits_a_filtered_session_and_counts_it() -> None:
    clock = [1_000.0]
    settings = StreamSettings(join_window_s=2.0, watermark_delay_s=0.0, allowed_lateness_s=5.0, idle_s=0.5,
                              user_cap_examples=15, user_cap_window_s=3600.0)  # fmt: skip
    metrics = StreamMetrics()
    rt = JoinRuntime(settings, metrics, clock=lambda: clock[0])
    recs = [RawRecord("impressions", 0, b"bot", encode(_imp("rb", "bot", 1_000.0, user="b")))]
    recs += [RawRecord("interactions", 0, b"bot", encode(_click(f"b{k}", "bot", f"t{k}", 1_000.1 + 0.02 * k, "rb")))
             for k in range(10)]  # fmt: skip
    for k in range(3):  # one heavy user: 3 slates of 10, cap 15
        recs.append(
            RawRecord("impressions", 1, b"u", encode(_imp(f"ru{k}", f"su{k}", 1_000.0 + k, user="heavy")))
        )
    recs.append(RawRecord("interactions", 1, b"u", encode(_click("u1", "su0", "t3", 1_001.5, "ru0"))))
    rt.process(recs)
    clock[0] = 1_020.0
    out = rt.tick()
    examples = [
        ex for o in out if o.topic == settings.topic_examples and o.value for ex in decode_examples(o.value)
    ]
    assert len(examples) == 15 and all(ex.session_id != "bot" for ex in examples)

    def value(name: str, **labels: str) -> float:
        got = metrics.registry.get_sample_value(name, labels)
        return 0.0 if got is None else got

    assert value("smarttrip_stream_filtered_sessions_total", reason="click_flood") == 1
    assert value("smarttrip_stream_filtered_examples_total", reason="click_flood") == 10
    assert value("smarttrip_stream_filtered_examples_total", reason="user_cap") == 15
    assert value("smarttrip_stream_capped_users_total") == 1


def test_the_join_runtime_forgets_a_partitions_cap_window_once_that_partition_is_past_it() -> None:
    settings = StreamSettings(join_window_s=2.0, watermark_delay_s=0.0, allowed_lateness_s=5.0, idle_s=0.5,
                              user_cap_examples=100, user_cap_window_s=10.0)  # fmt: skip
    rt = JoinRuntime(settings, StreamMetrics(), clock=lambda: 2_000.0)

    def imp(partition: int, request: str, ts: float, user: str) -> RawRecord:
        return RawRecord(
            "impressions", partition, request.encode(), encode(_imp(request, request, ts, 2, user))
        )

    # partition 1 runs 100 s of event time ahead of partition 0; each closes its first slate
    rt.process([imp(0, "a", 1_000.0, "a"), imp(0, "c", 1_003.0, "c"), imp(1, "b", 1_100.0, "b"),
                imp(1, "d", 1_103.0, "d")])  # fmt: skip
    # a (window 100, partition 0), b (window 110): partition 1 being ahead does not expire partition 0's window
    assert rt.gate.cap is not None and len(rt.gate.cap) == 2
    rt.process([imp(0, "e", 1_020.0, "e")])  # partition 0's watermark 1,020: window 100 is over for good
    assert len(rt.gate.cap) == 1  # b
    rt.rebuild(lambda key: False)  # a rebalance took every partition elsewhere
    assert len(rt.gate.cap) == 0


def test_settings_validate_the_quality_variables() -> None:
    gate = QualityGate.from_settings(StreamSettings.from_env({"SMARTTRIP_TRAFFIC_FILTER": "0",
                                                              "SMARTTRIP_USER_CAP_EXAMPLES": "0"}))  # fmt: skip
    assert gate.filter is None and gate.cap is None
    with pytest.raises(SettingsError, match="SMARTTRIP_BOT_STATE_TTL_S"):
        StreamSettings(bot_state_ttl_s=100.0)  # shorter than window + lateness
    with pytest.raises(SettingsError, match="SMARTTRIP_DRIFT_RESPONSE"):
        StreamSettings.from_env({"SMARTTRIP_DRIFT_RESPONSE": "2"})
    with pytest.raises(SettingsError, match="SMARTTRIP_USER_CAP_EXAMPLES"):
        StreamSettings(user_cap_examples=-1)
