"""The join runtime's per-batch shortcuts count and emit exactly what handling every outcome does."""

from __future__ import annotations

from collections.abc import Sequence

from monitoring.stream_metrics import StreamMetrics
from stream.join import Outcome
from stream.join_runtime import JoinRuntime, Output, RawRecord
from stream.settings import StreamSettings
from tests.stream.test_join import T0, script_records


class _EveryOutcome(JoinRuntime):
    """A subclass handling outcomes itself: every outcome of every record goes through ``_handle``."""

    def _handle(self, outcomes: Sequence[Outcome], now: float, out: list[Output], partition: int) -> None:
        super()._handle(outcomes, now, out, partition)


def _counts(metrics: StreamMetrics) -> dict[tuple[str, str], float]:
    found = {}
    for metric in (metrics.join_events, metrics.events, metrics.examples, metrics.deadletters):
        for s in next(iter(metric.collect())).samples:
            if s.name.endswith("_total"):
                found[(s.name, ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())))] = s.value
    return found


def test_counted_only_outcomes_added_per_batch_equal_handling_each() -> None:
    records = script_records()
    records += [records[2], RawRecord("interactions", 0, b"s1", b"{bad")]  # a duplicate, a dead letter
    outputs: list[list[Output]] = []
    counts = []
    for runtime_type in (JoinRuntime, _EveryOutcome):
        clock = [T0]

        def now(c: list[float] = clock) -> float:
            return c[0]

        # one example per record: what the eager path writes (a slate's examples packed otherwise)
        settings = StreamSettings(examples_per_record="one")
        rt = runtime_type(settings, StreamMetrics(), clock=now, changelog_topic="log")
        got: list[Output] = []
        for i in range(0, len(records), 3):  # batches of three
            clock[0] = T0 + 2000 + i * 10
            got += rt.process(records[i : i + 3])
        clock[0] += 10_000
        got += rt.tick() + rt.flush_all()
        outputs.append(got)
        counts.append(_counts(rt.metrics))
    assert outputs[0] == outputs[1]
    assert counts[0] == counts[1]
    kinds = {labels for (name, labels) in counts[0] if name == "smarttrip_stream_join_events_total"}
    assert {"kind=attached", "kind=held", "kind=duplicate_interaction"} <= kinds
