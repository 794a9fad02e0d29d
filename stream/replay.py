"""Replay: run the join and the learners over past records, without Faust or Kafka writes.

Two sources of truth, two modes:

``examples``
    Learn the logged ``examples`` topic itself with :class:`LearnerRuntime`
    — the learner agent's own code: per-partition offset order, dedupe by
    ``(example_id, revision)``, the same :data:`DEFAULT_POLICIES`. This
    reproduces the online models exactly when the online learner started
    from empty models and read the same range (no rollback or pin in
    between): every (policy, segment) model sees its segment's records in
    the same order, and ``learn_many`` equals a loop of ``learn_one``.
``raw``
    Re-run the session join (:class:`JoinRuntime`, the join agent's code)
    over ``impressions`` and ``interactions`` merged by broker timestamp,
    then learn its examples. The clock given to the join is the broker
    timestamp of the batch's last record, so windows close in event time as
    they did online; records without a timestamp use event time only. The
    examples are the online ones, but with several join partitions online
    their order across partitions (hence the last bits of the models) may
    differ: use ``examples`` to reproduce a run, ``raw`` to try a new join
    or reward configuration.

Bad records are dead-lettered (in memory) and counted by reason, never dropped
silently. :mod:`stream.replay_fast` is a faster path for ``raw`` on clean
input, tested equal to this one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import orjson

from bandit.fast_kernels import accelerate
from bandit.protocol import Learner
from monitoring.learner_metrics import LearnerMetrics
from monitoring.stream_metrics import StreamMetrics
from stream.export import LogRecord
from stream.join_runtime import JoinRuntime, Output, RawRecord
from stream.learner_runtime import DEFAULT_POLICIES, ExampleRecord, LearnerRuntime
from stream.settings import StreamSettings

__all__ = ["ReplayMode", "ReplayStats", "Replayer"]

ReplayMode = Literal["raw", "examples"]
_NO_CLOCK = 4_102_444_800.0  # records without broker time: a clock past every event


@dataclass
class ReplayStats:
    """What a replay consumed and produced."""

    events: int = 0  # input records used (impressions + interactions, or examples)
    ignored: int = 0  # records of topics this mode does not read
    examples: int = 0  # examples learned from (after dedupe)
    corrections: int = 0
    deadletters: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "events": self.events, "ignored": self.ignored, "examples": self.examples,
            "corrections": self.corrections, "deadletters": dict(self.deadletters),
            "seconds": self.seconds, "events_per_s": self.events_per_s,
        }  # fmt: skip


class Replayer:
    """Feed records in order, then :meth:`finish`; models are in :meth:`models`.

    Parameters
    ----------
    mode
        ``raw`` (join + learn) or ``examples`` (learn the logged examples).
    settings
        Topics and join windows, as the workers use them.
    policies
        policy name -> learner factory (default: the learner agent's).
    batch_size
        Records per micro-batch (default ``settings.batch_size``).
    compiled
        Learn with the compiled loops of :mod:`bandit.fast_kernels` (same
        arithmetic: logistic bit for bit, LinUCB to ~1e-12) where a policy's
        learner has one and numba is installed; default: the reference learners.
    """

    def __init__(
        self,
        mode: ReplayMode = "raw",
        *,
        settings: StreamSettings | None = None,
        policies: Mapping[str, Callable[[], Learner]] | None = None,
        batch_size: int | None = None,
        compiled: bool = False,
    ) -> None:
        if mode not in ("raw", "examples"):
            raise ValueError(f"mode: must be 'raw' or 'examples', got {mode!r}")
        self.mode: ReplayMode = mode
        self.settings = settings or StreamSettings()
        self.batch_size = batch_size or self.settings.batch_size
        self.stats = ReplayStats()
        self.compiled = compiled
        factories = dict(policies or DEFAULT_POLICIES)
        if compiled:
            factories = {name: _compiled(make) for name, make in factories.items()}
        self._now = _NO_CLOCK
        self.join = JoinRuntime(self.settings, StreamMetrics(), clock=lambda: self._now)
        self.learner = LearnerRuntime(
            self.settings, None, LearnerMetrics(), factories, clock=lambda: self._now
        )
        self._seq = 0

    def models(self) -> dict[tuple[str, str], Learner]:
        """The learned model of every (policy, segment) seen."""
        return self.learner.slots()

    def run(self, records: Iterable[LogRecord], progress: Callable[[int], None] | None = None) -> ReplayStats:
        """Replay every record and finish; ``progress(n)`` is called after each batch."""
        started = time.perf_counter()
        batch: list[LogRecord] = []
        for rec in records:
            batch.append(rec)
            if len(batch) >= self.batch_size:
                self.feed(batch)
                if progress is not None:
                    progress(len(batch))
                batch = []
        if batch:
            self.feed(batch)
            if progress is not None:
                progress(len(batch))
        self.finish()
        self.stats.seconds += time.perf_counter() - started
        return self.stats

    def feed(self, batch: Iterable[LogRecord]) -> None:
        """One micro-batch, in order."""
        s = self.settings
        wanted = (s.topic_impressions, s.topic_interactions) if self.mode == "raw" else (s.topic_examples,)
        records = list(batch)
        used = [r for r in records if r.topic in wanted]
        self.stats.ignored += len(records) - len(used)
        if not used:
            return
        self.stats.events += len(used)
        stamped = [r.timestamp_ms for r in used if r.timestamp_ms > 0]
        if stamped:
            self._now = max(stamped) / 1000.0
        if self.mode == "examples":
            self._learn([ExampleRecord(r.partition, r.offset, r.value) for r in used])
            return
        raws = [RawRecord(r.topic, r.partition, r.key, r.value) for r in used]
        self._outputs(self.join.process(raws))

    def finish(self) -> None:
        """End of input: close every open window (``raw``) and learn what it emits."""
        if self.mode == "raw":
            self._outputs(self.join.flush_all())

    def _outputs(self, outputs: list[Output]) -> None:
        s = self.settings
        examples: list[ExampleRecord] = []
        for out in outputs:
            if out.topic == s.topic_examples:
                examples.append(ExampleRecord(0, self._seq, out.value))
                self._seq += 1
            elif out.topic == s.topic_deadletter and out.value is not None:
                self.stats.deadletters[str(orjson.loads(out.value).get("reason"))] += 1
        self._learn(examples)

    def _learn(self, records: list[ExampleRecord]) -> None:
        if not records:
            return
        before = _learned(self.learner)
        for out in self.learner.process(records):
            if out.value is not None:
                self.stats.deadletters[str(orjson.loads(out.value).get("reason"))] += 1
        self.stats.examples += _learned(self.learner) - before
        corrections = self.join.metrics.registry.get_sample_value(
            "smarttrip_stream_examples_total", {"kind": "correction"}
        )
        self.stats.corrections = int(corrections or 0)


def _compiled(make: Callable[[], Learner]) -> Callable[[], Learner]:
    return lambda: accelerate(make())


def _learned(runtime: LearnerRuntime) -> int:
    """Examples learned so far by the first policy (every policy learns every fresh example)."""
    first = next(iter(runtime.policies))
    return sum(learner.n_examples for (policy, _), learner in runtime.slots().items() if policy == first)
