"""stream.delivery_watch: a partition fetched past records the agent never got is read again, and only then."""

from __future__ import annotations

from stream.delivery_watch import DeliveryWatch

TP = ("impressions", 2)
OTHER = ("interactions", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watch(stall_s: float = 3.0) -> tuple[DeliveryWatch[tuple[str, int]], Clock]:
    clock = Clock()
    return DeliveryWatch(stall_s=stall_s, clock=clock), clock


def test_the_session_8_stall_is_read_again_from_the_record_after_the_last_received() -> None:
    # Admitted up to 170, then the fetch position stood at the log's end with nothing delivered.
    w, clock = watch()
    w.received((TP, o) for o in range(171))
    clock.now = 3.0
    assert w.stalled({TP: 1461}, buffered=False) == {TP: 171}
    assert w.seeks == 1


def test_records_still_buffered_or_recent_are_not_a_stall() -> None:
    w, clock = watch()
    w.received([(TP, 10)])
    clock.now = 10.0
    assert w.stalled({TP: 500}, buffered=True) == {}  # on their way through the stream's buffer
    w.received([(TP, 11)])
    clock.now = 12.0
    assert w.stalled({TP: 500}, buffered=False) == {}  # received 2 s ago: within stall_s
    clock.now = 14.0
    assert w.stalled({TP: 500}, buffered=False) == {TP: 12}


def test_a_position_at_the_next_record_is_caught_up_however_long_it_was_quiet() -> None:
    w, clock = watch()
    w.received([(TP, 41)])
    clock.now = 1_000.0
    assert w.stalled({TP: 42, OTHER: None}, buffered=False) == {}


def test_a_partition_nothing_was_received_of_is_not_judged() -> None:
    # Where reading starts after an assignment is Faust's seek's to say; the watch knows nothing yet.
    w, clock = watch()
    clock.now = 100.0
    assert w.stalled({TP: 5_000}, buffered=False) == {}


def test_a_seek_sets_the_expectation_and_a_stall_from_there_is_read_again_from_it() -> None:
    w, clock = watch()
    w.received([(TP, 900)])
    w.expect(TP, 0)  # a new log: read from its start
    clock.now = 2.0
    assert w.stalled({TP: 0}, buffered=False) == {}  # nothing fetched yet
    clock.now = 4.0
    assert w.stalled({TP: 181}, buffered=False) == {TP: 0}


def test_each_stall_is_asked_once_per_stall_s_and_again_if_it_persists() -> None:
    w, clock = watch(stall_s=2.0)
    w.received([(TP, 5)])
    clock.now = 2.0
    assert w.stalled({TP: 50}, buffered=False) == {TP: 6}
    clock.now = 3.0
    assert w.stalled({TP: 50}, buffered=False) == {}
    clock.now = 4.0
    assert w.stalled({TP: 50}, buffered=False) == {TP: 6}  # the seek was overtaken: ask again
    w.received([(TP, 6), (TP, 7)])
    clock.now = 5.0
    assert w.stalled({TP: 50}, buffered=False) == {}
    assert w.seeks == 2


def test_the_last_record_received_counts_not_the_highest() -> None:
    # After a seek back, records are received again from lower offsets: the expectation follows them.
    w, clock = watch()
    w.received([(TP, 300), (TP, 120)])
    clock.now = 3.0
    assert w.stalled({TP: 301}, buffered=False) == {TP: 121}


def test_forget_drops_revoked_partitions_or_all() -> None:
    w, clock = watch()
    w.received([(TP, 1), (OTHER, 1)])
    w.forget([TP])
    clock.now = 5.0
    assert w.stalled({TP: 100, OTHER: 100}, buffered=False) == {OTHER: 2}
    w.forget()
    clock.now = 10.0
    assert w.stalled({TP: 100, OTHER: 100}, buffered=False) == {}
