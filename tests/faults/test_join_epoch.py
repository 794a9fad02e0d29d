"""The join's log-epoch pieces without a broker: :class:`LogEpochs` and :class:`OffsetGate`.

The worker-level behaviour (a join worker frozen through an empty-broker
restart joins every record of the new log) is in ``test_broker_restart.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from stream.join_epoch import OffsetGate
from stream.log_epoch import LogEpochs

pytestmark = [pytest.mark.faults]

TOPICS = ["impressions", "interactions"]


class Broker:
    """Topic ids as a broker would answer them; ``down`` makes every question fail."""

    def __init__(self) -> None:
        self.ids: dict[str, str | None] = {"impressions": "i1", "interactions": "x1"}
        self.down = False
        self.asked = 0

    def __call__(self, servers: str, topics: Sequence[str]) -> Mapping[str, str | None]:
        self.asked += 1
        if self.down:
            raise OSError("connection refused")
        return {t: self.ids[t] for t in topics}


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def epochs(broker: Broker, clock: Clock) -> LogEpochs:
    return LogEpochs("127.0.0.1:1", TOPICS, lookup=broker, clock=clock, max_age_s=3.0)


def test_a_recreated_topic_is_a_new_log_and_only_that_topic_changes() -> None:
    broker, clock = Broker(), Clock()
    e = epochs(broker, clock)
    assert e.start() == {"impressions": "i1", "interactions": "x1"}
    assert e.check_now() == []
    broker.ids["interactions"] = "x2"
    assert e.check_now() == ["interactions"]
    assert e.known == {"impressions": "i1", "interactions": "x2"} and e.changes == 1
    assert e.check_now() == []  # reported once


def test_confirmation_expires_and_a_failed_check_withdraws_it() -> None:
    broker, clock = Broker(), Clock()
    e = epochs(broker, clock)
    e.start()
    assert e.fresh()
    clock.t += 3.5
    assert not e.fresh()  # a frozen worker wakes up unconfirmed
    e.check_now()
    assert e.fresh()
    broker.down = True
    assert e.check_now() == []
    assert not e.fresh()  # the broker was away: records at hand may come from a new log


def test_a_late_answer_never_undoes_a_newer_one() -> None:
    broker, clock = Broker(), Clock()
    e = epochs(broker, clock)
    e.start()
    old_start = clock.t
    clock.t += 1
    broker.ids["impressions"] = "i2"
    assert e.check_now() == ["impressions"]
    # An answer to a question asked before the change arrives now: ignored.
    assert e.apply({"impressions": "i1", "interactions": "x1"}, old_start) == []
    assert e.known["impressions"] == "i2"


def test_brokers_without_topic_ids_get_the_fixed_epoch_zero() -> None:
    broker, clock = Broker(), Clock()
    broker.ids = {"impressions": None, "interactions": None}
    assert epochs(broker, clock).start() == {"impressions": "0", "interactions": "0"}


def test_start_refuses_to_guess_when_the_broker_never_answers() -> None:
    broker, clock = Broker(), Clock()
    broker.down = True
    with pytest.raises(RuntimeError, match="no answer"):
        epochs(broker, clock).start(attempts=2, wait_s=0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"topics": []}, "topics"), ({"max_age_s": 0.0}, "max_age_s")],
)
def test_log_epochs_validate_their_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"topics": TOPICS, "max_age_s": 3.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        LogEpochs("127.0.0.1:1", args["topics"], max_age_s=args["max_age_s"])  # type: ignore[arg-type]


def test_gate_reads_a_reset_partition_contiguously_from_zero() -> None:
    clock = Clock()
    gate = OffsetGate(retry_s=0.5, clock=clock)
    tp = ("impressions", 2)
    other = ("impressions", 3)
    assert not gate  # nothing reset: everything passes untouched
    gate.reset(tp)
    # Records fetched at the old log's positions (5000..) before the seek took effect: refused.
    assert [gate.admit(tp, o) for o in (5000, 5001)] == [False, False]
    assert gate.take_seeks() == {tp: 0}
    assert gate.take_seeks() == {}  # asked once per retry_s
    assert gate.admit(tp, 5002) is False and gate.take_seeks() == {}
    clock.t += 0.6
    assert gate.admit(tp, 5003) is False and gate.take_seeks() == {tp: 0}
    assert [gate.admit(tp, o) for o in range(4)] == [True] * 4
    assert gate.admit(tp, 2) is True  # a re-delivery below the expected offset
    assert gate.admit(other, 9_999) is True  # partitions without a reset are not gated
    assert gate.refused == 4
    assert gate.expected() == {tp: 4}


def test_gate_never_lets_an_old_log_position_be_committed() -> None:
    gate = OffsetGate(clock=Clock())
    tp = ("interactions", 0)
    assert gate.may_commit(tp, 10_000)  # not reset: Faust's own bookkeeping decides
    gate.reset(tp)
    assert not gate.may_commit(tp, 1)  # nothing of the new log processed yet
    for o in range(3):
        gate.admit(tp, o)
    assert gate.may_commit(tp, 3) and not gate.may_commit(tp, 4)
    gate.forget(tp)
    assert gate.may_commit(tp, 10_000)


def test_gate_accepts_a_gap_that_never_fills() -> None:
    clock = Clock()
    gate = OffsetGate(give_up_s=30.0, clock=clock)
    tp = ("impressions", 0)
    gate.reset(tp)
    assert gate.admit(tp, 50) is False
    clock.t += 31
    assert gate.admit(tp, 51) is True and gate.gaps_accepted == 1
    assert gate.admit(tp, 52) is True


def test_gate_releases_a_partition_once_the_new_log_is_committed_up_to_date() -> None:
    clock = Clock()
    gate = OffsetGate(clock=clock)
    tp, other = ("impressions", 1), ("impressions", 2)
    gate.reset(tp)
    gate.reset(other)
    assert [gate.admit(tp, o) for o in range(5)] == [True] * 5
    gate.committed(tp, 3)  # records 3 and 4 admitted but not yet committed: still gated
    assert gate.expected() == {tp: 5, other: 0}
    gate.admit(other, 7)  # refused, a seek back pending: never released while refusing
    gate.committed(other, 0)
    assert other in gate.expected()
    gate.committed(tp, 5)
    assert gate.expected() == {other: 0}
    assert gate.admit(tp, 9_000) is True and gate.may_commit(tp, 9_001)  # Faust's own bookkeeping again
    assert [gate.admit(other, 0), gate.take_seeks()] == [True, {other: 0}]
    gate.committed(other, 1)
    assert other in gate.expected()  # refused a moment ago: old-position records may still be buffered
    clock.t += 10.0
    gate.release_settled()  # no new commit needed once the input went quiet
    assert not gate  # every partition released: batches take the fast path
