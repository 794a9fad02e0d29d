"""One join and one watermark per input partition: a partition read behind holds back only itself.

Impressions and interactions are co-partitioned by session, so partition
``p``'s windows may close as soon as ``p`` of both topics has moved on,
whatever the other partitions do; the rules of the single watermark (a
topic with unread records never idles, one not seen yet holds its
partition, idle input follows the wall clock, restored sessions) hold per
partition. The bot rules' state expires with the same clocks.
"""

from __future__ import annotations

from monitoring.stream_metrics import StreamMetrics
from stream.codec import decode_examples, encode
from stream.events import Impression, Interaction, SlateItem
from stream.join_runtime import JoinRuntime, Output, RawRecord, StateTable, key_partition
from stream.settings import StreamSettings
from stream.traffic_filter import TrafficFilter, TrafficRules

SETTINGS = StreamSettings(join_window_s=2.0, watermark_delay_s=0.0, allowed_lateness_s=3.0, idle_s=5.0)
T0 = 1_000.0
PARTITIONS = 4


def _imp(session: str, ts: float) -> Impression:
    slate = tuple(SlateItem(f"t{i}", i, 0.0, 1.0, (1.0, 0.0)) for i in range(2))
    return Impression(f"r-{session}-{ts}", session, "u1", "general", "rules", "m0", "phi-v1", ts, slate)


def _click(session: str, ts: float, request: str) -> Interaction:
    return Interaction(f"e-{session}-{ts}", session, "t0", "click", ts, request_id=request)


def _session_in(partition: int, k: int = 0) -> str:
    """A session id whose murmur2 partition (of 4) is ``partition``."""
    found = [f"s{i}" for i in range(1000) if key_partition(f"s{i}", PARTITIONS) == partition]
    return found[k]


def _records(session: str, ts: float) -> list[RawRecord]:
    """A slate and a click on it, read from the session's partition."""
    p, imp = key_partition(session, PARTITIONS), _imp(session, ts)
    return [
        RawRecord("impressions", p, session.encode(), encode(imp)),
        RawRecord("interactions", p, session.encode(), encode(_click(session, ts + 0.5, imp.request_id))),
    ]


def _closed(out: list[Output]) -> set[str]:
    """Sessions whose examples were emitted."""
    return {
        ex.session_id
        for o in out
        if o.topic == "examples" and o.value is not None
        for ex in decode_examples(o.value)
    }


def test_a_partition_read_behind_does_not_hold_back_the_others() -> None:
    clock = [T0 + 3_600.0]  # the wall clock is far ahead: a backlog
    rt = JoinRuntime(SETTINGS, StreamMetrics(), clock=lambda: clock[0])
    slow, fast, later = _session_in(0), _session_in(1), _session_in(1, 1)
    out = rt.process(_records(slow, T0) + _records(fast, T0) + _records(later, T0 + 60.0))
    # Partition 1 has read up to T0 + 60.5: its first session's window (end T0 + 2) closed.
    # Partition 0 has read nothing past T0 + 0.5: its session waits for its own partition.
    assert _closed(out) == {fast}
    assert rt.open_sessions == 2
    out = rt.process(_records(_session_in(0, 1), T0 + 30.0))  # partition 0 moves on: its window closes
    assert _closed(out) == {slow}


def test_unread_records_hold_their_partition_only() -> None:
    clock = [T0 + 3_600.0]
    rt = JoinRuntime(SETTINGS, StreamMetrics(), clock=lambda: clock[0])
    waiting, free = _session_in(2), _session_in(3)
    imp = _imp(waiting, T0)
    first = [RawRecord("impressions", 2, waiting.encode(), encode(imp)), *_records(free, T0)]
    first += _records(_session_in(2, 1), T0 + 60.0)[:1] + _records(_session_in(3, 1), T0 + 60.0)
    # interactions of partition 2 are still unread, and none has been read yet: they may be the oldest
    rt.backlogged = lambda: [("interactions", 2)]
    out = rt.process(first)
    assert _closed(out) == {free}  # partition 3 closed its window; partition 2 held its watermark
    late_click = RawRecord(
        "interactions", 2, waiting.encode(), encode(_click(waiting, T0 + 1.0, imp.request_id))
    )
    rt.backlogged = tuple
    moved_on = _records(_session_in(2, 1), T0 + 60.0)[1]  # and partition 2's interactions move on
    out = rt.process([late_click, moved_on])  # the click joins its window in time, which then closes
    examples = [
        ex for o in out if o.topic == "examples" and o.value is not None for ex in decode_examples(o.value)
    ]
    assert {(ex.session_id, ex.trip_id, ex.clicked) for ex in examples if ex.session_id == waiting} == {
        (waiting, "t0", True),
        (waiting, "t1", False),
    }
    assert not [o for o in out if o.topic == SETTINGS.topic_deadletter]


def test_an_idle_partition_follows_the_wall_clock_while_the_others_are_read() -> None:
    clock = [T0 + 1.0]  # live: the wall clock is just past event time
    rt = JoinRuntime(SETTINGS, StreamMetrics(), clock=lambda: clock[0])
    quiet, busy = _session_in(0), _session_in(1)
    assert _closed(rt.process(_records(quiet, T0) + _records(busy, T0))) == set()
    for step in range(1, 8):  # partition 1 keeps delivering, partition 0 has nothing more to say
        clock[0] = T0 + 1.0 + step
        out = rt.process(_records(_session_in(1, step), T0 + step))
        if quiet in _closed(out):
            break
    # idle for more than idle_s (5 s): its event time went on with the wall clock and its window closed
    assert quiet in _closed(out) and step == 6


def test_restored_sessions_go_to_their_partitions_join_and_leave_with_it() -> None:
    table: StateTable = {}
    clock = [T0 + 1.0]
    first = JoinRuntime(SETTINGS, StreamMetrics(), table=table, clock=lambda: clock[0])
    mine, other = _session_in(0), _session_in(2)
    assert _closed(first.process(_records(mine, T0) + _records(other, T0))) == set()
    assert set(table) == {mine, other}
    # A restart (or a rebalance) rebuilds the joins from the table: each session in its key's partition.
    restarted = JoinRuntime(SETTINGS, StreamMetrics(), table=table, clock=lambda: clock[0])
    assert restarted.open_sessions == 2
    clock[0] = T0 + 5.0  # within idle_s of the restart
    out = restarted.process(
        _records(_session_in(0, 1), T0 + 4.0)
    )  # partition 0 moves on, partition 2 does not
    assert _closed(out) == {mine}
    open_before = restarted.open_sessions
    restarted.rebuild(lambda key: key_partition(key, PARTITIONS) != 2)  # partition 2 revoked
    assert restarted.open_sessions == open_before - 1 and other in table  # its entry stays for the next owner
    clock[0] = T0 + 20.0
    assert other not in _closed(restarted.tick())  # not this worker's any more
    restarted.rebuild(lambda key: True)  # partition 2 assigned again: recovered, without input yet
    assert _closed(restarted.tick()) == set()
    clock[0] = T0 + 26.0  # no input on it for more than idle_s: its event time follows the wall clock
    assert _closed(restarted.tick()) == {other}


def test_rule_state_expires_with_its_own_partitions_clock() -> None:
    f = TrafficFilter(TrafficRules(state_ttl_s=60.0), self_clocked=False)
    for k in range(100):
        f.observe_impression(_imp(f"a{k}", T0 + k), partition=0)
        f.observe_impression(_imp(f"b{k}", T0 + 500.0 + k), partition=1)  # read far ahead
    # Partition 1's watermark is far ahead: only its own idle sessions go.
    assert f.expire(T0 + 500.0 + 60.0 + 50.0, partition=1) == 50
    assert len(f) == 150 and f.expire(T0 + 10.0, partition=0) == 0
    f.observe_impression(_imp("a5", T0 + 100.0), partition=0)  # seen again: kept past its first TTL
    assert f.expire(T0 + 80.0, partition=0) == 19  # a0..a19 but a5
    assert len(f) == 131


def test_self_clocked_rule_state_is_not_pinned_by_a_partition_read_ahead() -> None:
    f = TrafficFilter(TrafficRules(state_ttl_s=60.0))
    f.observe_impression(_imp("ahead", T0 + 10_000.0), partition=1)
    for k in range(200):  # partition 0 read far behind: its sessions expire with its own event time
        f.observe_impression(_imp(f"s{k}", T0 + k), partition=0)
    assert len(f) == 1 + 61  # partition 1's session and partition 0's last 61 seconds
