from __future__ import annotations

from stream.learner_runtime import ExampleRecord
from stream.resume_guard import ResumeGuard


def _recs(partition: int, *offsets: int) -> list[ExampleRecord]:
    return [ExampleRecord(partition, o, b"") for o in offsets]


def test_records_past_the_resume_offset_wait_for_a_seek_back() -> None:
    now = [0.0]
    g = ResumeGuard(retry_s=1.0, clock=lambda: now[0])
    g.expect(1, 100)
    assert g.admit(_recs(1, 150, 151) + _recs(2, 7)) == _recs(2, 7)  # no expectation on partition 2
    assert g.take_seeks() == {1: 100} and g.take_seeks() == {}
    assert g.admit(_recs(1, 152)) == [] and g.take_seeks() == {}  # within retry_s: no second seek
    now[0] = 1.5
    assert g.admit(_recs(1, 153)) == [] and g.take_seeks() == {1: 100}  # asked again
    assert g.admit(_recs(1, 99, 100, 101, 102)) == _recs(1, 99, 100, 101, 102)
    assert g.admit(_recs(1, 103)) == _recs(1, 103) and g.take_seeks() == {}


def test_a_gap_that_is_really_in_the_log_is_accepted_after_the_retries() -> None:
    now = [0.0]
    g = ResumeGuard(retry_s=1.0, max_retries=2, clock=lambda: now[0])
    g.expect(0, 10)
    for _ in range(2):
        assert g.admit(_recs(0, 500)) == [] and g.take_seeks() == {0: 10}
        now[0] += 2
    assert g.admit(_recs(0, 500, 501)) == _recs(0, 500, 501)
    assert g.gaps_accepted == 1 and g.take_seeks() == {}
    g.expect(0, None)
    assert g.admit(_recs(0, 3)) == _recs(0, 3)
