"""The fast path of a ``raw`` replay: examples go from the join to the learners as objects.

The careful path (:class:`stream.replay.Replayer`) runs the join agent's
:class:`~stream.join_runtime.JoinRuntime`, which encodes every example to
JSON for the ``examples`` topic, and the learner agent's
:class:`~stream.learner_runtime.LearnerRuntime`, which decodes it again —
a quarter of a replay's time. Here the join runtime keeps the emitted
:class:`~stream.events.Example` objects instead (same join, same watermark,
same quality gate, same dead letters) and the learner runtime learns them through
:meth:`~stream.learner_runtime.LearnerRuntime.learn_decoded` (same dedupe,
same order, same policies), by default with the compiled learner loops of
:mod:`bandit.fast_kernels`. Examples whose φ has the wrong length are
dead-lettered as the learner agent would. ``tests/analysis/test_replay.py``
checks that both paths learn identical models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bandit.protocol import Learner
from features.phi import D
from stream.events import Example
from stream.join import Counted, DeadLettered, Emitted, Outcome
from stream.join_runtime import JoinRuntime, Output
from stream.learner_runtime import ExampleRecord
from stream.replay import Replayer
from stream.settings import StreamSettings

__all__ = ["FastReplayer"]


class _CollectingJoin(JoinRuntime):
    """The join runtime, keeping emitted examples as objects instead of encoding them."""

    collected: list[Example]

    def _handle(self, outcomes: Sequence[Outcome], now: float, out: list[Output], partition: int) -> None:
        for o in outcomes:
            if isinstance(o, Emitted):
                if (
                    self.gate.admit(o.example, partition) is not None
                ):  # filtered or capped: counted, not learned
                    continue
                self.collected.append(o.example)
                if o.example.revision:
                    self.metrics.examples.labels("correction").inc()
            elif isinstance(o, DeadLettered):
                self._dead_letter(o.dead_letter, out)
            elif isinstance(o, Counted):
                self.metrics.join_events.labels(o.name).inc()


class FastReplayer(Replayer):
    """A ``raw`` replay equal to :class:`Replayer` ``("raw")``, without the JSON round trip."""

    def __init__(
        self,
        *,
        settings: StreamSettings | None = None,
        policies: Mapping[str, Callable[[], Learner]] | None = None,
        batch_size: int | None = None,
        compiled: bool = True,
    ) -> None:
        super().__init__(
            "raw", settings=settings, policies=policies, batch_size=batch_size, compiled=compiled
        )
        join = _CollectingJoin(self.settings, self.join.metrics, clock=lambda: self._now)
        join.collected = []
        self.join = join
        self._collecting = join

    def _outputs(self, outputs: list[Output]) -> None:
        super()._outputs(outputs)  # dead letters
        examples, self._collecting.collected = self._collecting.collected, []
        items: list[tuple[ExampleRecord, Example]] = []
        for ex in examples:
            if len(ex.phi) != D:
                self.stats.deadletters["invalid_field"] += 1
                continue
            items.append((ExampleRecord(0, self._seq, None), ex))
            self._seq += 1
        if items:
            self._learn_items(items)
        corrections = self.join.metrics.registry.get_sample_value(
            "smarttrip_stream_examples_total", {"kind": "correction"}
        )
        self.stats.corrections = int(corrections or 0)

    def _learn_items(self, items: list[tuple[ExampleRecord, Example]]) -> None:
        """Learn decoded examples (a subclass may only count them: the join-only benchmark)."""
        first = next(iter(self.learner.policies))
        before = sum(m.n_examples for (p, _), m in self.learner.slots().items() if p == first)
        self.learner.learn_decoded(items)
        self.stats.examples += (
            sum(m.n_examples for (p, _), m in self.learner.slots().items() if p == first) - before
        )
