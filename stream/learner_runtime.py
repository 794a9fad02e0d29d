"""The learner worker's logic between example records and the model store, without Kafka.

Every example trains one model per (policy, segment) for each policy in
:data:`DEFAULT_POLICIES`: all traffic, whatever variant served it, teaches
every learner (the learners correct for position bias; the logged propensity
travels with each example for off-policy evaluation).

Effectively-once, as ARCHITECTURE.md asks:

- each published version carries, per partition of ``examples``, the highest
  offset it has learned; a restarted or rebalanced worker loads the model and
  skips every record at or below that offset, and the Faust glue seeks each
  partition back to :meth:`LearnerRuntime.resume_offset` so nothing committed
  but unpublished is lost;
- a repeated ``(example_id, revision)`` is not learned twice (the join may
  re-emit examples after a crash) — within a bounded memory of recent ids;
- publishes are compare-and-set on the version the model was loaded from; a
  conflict (another worker after a rebalance, or an operator's rollback)
  reloads the stored model, which then wins: a rollback discards what was
  learned since the version it restored.

Publishing happens at most every ``publish_interval_s`` or every
``publish_every_n`` examples, whichever comes first.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from bandit import LinUCB, LogisticLearner, fast_kernels, learner_from_bytes
from bandit.drift import DriftConfig, DriftEvent, DriftMonitor
from bandit.fast_kernels import accelerate, warm_up
from bandit.protocol import Learner
from bandit.segments import GLOBAL_SEGMENT
from features.phi import D
from monitoring.learner_metrics import LearnerMetrics
from stream import learner_drift
from stream.codec import decode_examples, encode
from stream.errors import EventError
from stream.events import DeadLetter, Example
from stream.join_runtime import Output
from stream.learner_decode import LearnRow, learn_rows
from stream.learner_slots import DEFAULT_POLICIES, ExampleRecord, Slot
from stream.model_store import GuardrailError, ModelStore, StoreUnavailable, UnknownModel, VersionConflict
from stream.recent_ids import RecentIds
from stream.settings import StreamSettings

__all__ = ["DEFAULT_POLICIES", "ExampleRecord", "LearnerRuntime"]

log = logging.getLogger(__name__)

#: A decoded example: the codec's object, or the learner's lighter view of it (same attribute names).
_Row = Example | LearnRow

#: Per segment (stream.recent_ids): example ids are remembered for half to all of ``dedupe_horizon_s`` (120 s)
#: of event time (the join re-emits within seconds to tens of seconds), and at least the last 400,000 of a burst.
#: The sets fill for the whole horizon (~80 bytes an id; ~50 MiB at the soak's 5,700 examples/s), so a
#: measurement of the learner's memory starts after it (bench.soak).
_DEDUPE_MAX_KEYS = 800_000


class LearnerRuntime:
    """Learn micro-batches of example records; publish versions to the store.

    Parameters
    ----------
    settings
        Publish cadence, log epoch, topics.
    store
        The Redis model store (None: learn without publishing, e.g. replay).
    metrics
        The worker's metrics bundle.
    policies
        policy name -> factory of a fresh learner.
    clock
        Wall clock (injected by tests).
    fast
        The learner worker's fast path: records decoded by :func:`stream.learner_decode.learn_rows`
        (the codec's rules, no :class:`~stream.events.Example` objects) and learned with
        the loops of :mod:`bandit.fast_kernels` (numba; VW's core called directly). The
        same models: logistic and VW bit for bit, LinUCB to ~1e-12 (rank-one updates
        instead of Woodbury blocks); the same dead letters. The kernels are warmed up
        here, so the first micro-batch does not compile them. Without numba only VW's
        loop is replaced. False: the reference decoder and learners.
    """

    def __init__(
        self,
        settings: StreamSettings,
        store: ModelStore | None,
        metrics: LearnerMetrics | None = None,
        policies: Mapping[str, Callable[[], Learner]] | None = None,
        clock: Callable[[], float] = time.time,
        fast: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics or LearnerMetrics()
        self.policies = dict(policies or DEFAULT_POLICIES)
        self._clock = clock
        self.fast = fast
        if fast and fast_kernels.AVAILABLE:
            log.info("learner kernels ready in %.2f s", warm_up())
        elif fast:
            log.warning(
                "numba is not installed (the 'fast' extra): logistic and LinUCB learn with the reference loops"
            )
        self._slots: dict[tuple[str, str], Slot] = {}
        self._recent: dict[str, RecentIds] = {}
        self._since_publish = 0
        self._last_publish = clock()
        # Which log of the examples topic the offsets refer to (see stream.log_epoch);
        # "auto" is resolved by the Faust glue before the first model is loaded.
        self.log_epoch = settings.log_epoch
        s = settings  # drift detectors and their response (bandit.drift)
        self.drift = DriftMonitor(
            DriftConfig(delta=s.drift_delta, respond=bool(s.drift_response), min_examples=s.drift_min_examples,
                        cooldown=s.drift_cooldown, linucb_keep=s.drift_linucb_keep, min_change=s.drift_min_change),
            on_event=self._on_drift,
        )  # fmt: skip

    # -- state
    def model(self, policy: str, segment: str) -> Learner:
        """The in-memory learner of (policy, segment) (loaded from the store on first use)."""
        return self._slot(policy, segment).learner

    def slots(self) -> dict[tuple[str, str], Learner]:
        return {key: slot.learner for key, slot in self._slots.items()}

    def resume_offset(self, partition: int, segments: Sequence[str]) -> int | None:
        """Where to resume ``partition``: one past the lowest offset any model of it has learned.

        None when no model of these segments has consumed from the partition yet
        (the caller then reads the partition from its beginning).
        """
        lowest: int | None = None
        for segment in segments:
            for policy in self.policies:
                done = self._slot(policy, segment).offsets.get(partition)
                if done is None:
                    return None
                lowest = done if lowest is None else min(lowest, done)
        return None if lowest is None else lowest + 1

    def use_log_epoch(self, epoch: str) -> bool:
        """Switch to a new log of the examples topic; True if it differs from the current one.

        Offsets of the old log mean nothing in the new one (an emptied broker starts
        again at 0): every model keeps what it learned but forgets its offsets, and is
        published again under the new epoch.
        """
        if epoch == self.log_epoch:
            return False
        if self.log_epoch == "auto":  # the first answer at start-up, not a change
            log.info("examples log epoch %r", epoch)
        else:
            log.warning("examples log epoch %r -> %r: models keep their weights, forget their offsets",
                        self.log_epoch, epoch)  # fmt: skip
        self.log_epoch = epoch
        for slot in self._slots.values():
            slot.offsets.clear()
            slot.dirty = True
        return True

    def unpublished_partitions(self) -> set[int]:
        """Partitions read by a model whose latest learning is not in the store yet."""
        return {p for slot in self._slots.values() if slot.dirty for p in slot.offsets}

    def _slot(self, policy: str, segment: str) -> Slot:
        key = (policy, segment)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = self._load(policy, segment)
        return slot

    def _load(self, policy: str, segment: str) -> Slot:
        if self.store is not None:
            try:
                record = self.store.get(policy, segment)
            except UnknownModel:
                pass
            else:
                learner = self._fast(learner_from_bytes(record.model_bytes))
                if record.meta.log_epoch == self.log_epoch:
                    return Slot(learner, record.version, dict(record.meta.offsets))
                # A new log (e.g. an emptied broker): keep the model, forget the old offsets.
                log.warning("model %s/%s refers to log epoch %r; now %r", policy, segment,
                            record.meta.log_epoch, self.log_epoch)  # fmt: skip
                return Slot(learner, record.version, {})
            slot = Slot(self._fast(self.policies[policy]()))
            # Store the model before it learns anything. A restart resumes each partition at the
            # lowest offset its *stored* models have learned; a model that learned but never reached
            # the store would have its records skipped. Stored with no offsets, it makes a restart
            # read its partition from the start (the other models skip what they already learned).
            self._publish_one(policy, segment, slot)
            return slot
        return Slot(self._fast(self.policies[policy]()))

    def _fast(self, learner: Learner) -> Learner:
        return accelerate(learner) if self.fast else learner

    # -- learning
    def process(self, records: Sequence[ExampleRecord]) -> list[Output]:
        """Learn one micro-batch in offset order; returns dead letters to produce."""
        out: list[Output] = []
        by_segment: dict[str, list[tuple[ExampleRecord, _Row]]] = {}
        now = self._clock()
        decode: Callable[[bytes], Sequence[_Row]] = learn_rows if self.fast else decode_examples
        for rec in records:
            try:
                if rec.value is None:
                    raise EventError("payload", "empty record (tombstone)", reason="bad_json")
                rows = decode(rec.value)
                for i, ex in enumerate(rows):
                    if len(ex.phi) != D:
                        path = "phi" if len(rows) == 1 else f"examples[{i}].phi"
                        raise EventError(path, f"must have {D} values, got {len(ex.phi)}")
            except EventError as err:  # a slate's record is learned whole or dead-lettered whole
                raw = rec.value or b""
                dl = DeadLetter.from_error(raw, err, source_topic=self.settings.topic_examples, ts=now)
                out.append(Output(self.settings.topic_deadletter, dl.source_topic.encode(), encode(dl)))
                self.metrics.deadletters.labels(err.reason).inc()
                continue
            for ex in rows:
                by_segment.setdefault(self._segment_of(ex), []).append((rec, ex))
        for segment, items in by_segment.items():
            self._learn_segment(segment, items)
        return out

    def learn_decoded(self, items: Sequence[tuple[ExampleRecord, Example]]) -> None:
        """Learn examples already decoded and checked (replay tools), exactly as :meth:`process` does."""
        by_segment: dict[str, list[tuple[ExampleRecord, Example]]] = {}
        for rec, ex in items:
            by_segment.setdefault(self._segment_of(ex), []).append((rec, ex))
        for segment, seg_items in by_segment.items():
            self._learn_segment(segment, seg_items)

    def _segment_of(self, ex: _Row) -> str:
        # A global learner (SMARTTRIP_LEARN_SCOPE=global) keeps one model per policy for all segments.
        return GLOBAL_SEGMENT if self.settings.learn_scope == "global" else ex.segment

    def _learn_segment(self, segment: str, items: Sequence[tuple[ExampleRecord, _Row]]) -> None:
        recent = self._recent.get(segment)
        if recent is None:
            recent = self._recent[segment] = RecentIds(
                horizon_s=self.settings.dedupe_horizon_s, max_keys=_DEDUPE_MAX_KEYS
            )
        remember = recent.add
        fresh: list[tuple[ExampleRecord, _Row]] = []
        duplicates = 0
        for rec, ex in items:
            if not remember((ex.example_id, ex.revision), ex.ts):
                duplicates += 1
                continue
            fresh.append((rec, ex))
        if not fresh:
            self._count_skips(segment, 0, duplicates)
            return
        # One set of arrays for all policies (they usually learn the same rows).
        X_all = np.array([e.phi for _, e in fresh], dtype=np.float64)
        y_all = np.array([e.reward for _, e in fresh], dtype=np.float64)
        pos_all = np.array([e.position for _, e in fresh], dtype=np.int64)
        prop_all = np.array([e.propensity for _, e in fresh], dtype=np.float64)
        parts = np.array([r.partition for r, _ in fresh], dtype=np.int64)
        offs = np.array([r.offset for r, _ in fresh], dtype=np.int64)
        rand_all = np.array([e.randomized for _, e in fresh], dtype=np.bool_)
        clicked_all = np.array([e.clicked for _, e in fresh], dtype=np.bool_)
        in_batch = list(dict.fromkeys(parts.tolist()))  # partitions, in order of first appearance
        # The click rate of each serving policy (known names only: labels and detectors stay bounded).
        for served in sorted({e.policy for _, e in fresh} & {"rules", *self.policies}):
            model = self._slot(served, segment).learner if served in self.policies else None
            clicked = [e.clicked for _, e in fresh if e.policy == served]
            if self.fast:
                learner_drift.observe_clicks(self.drift, served, segment, clicked, model)
            else:
                self.drift.observe_clicks(served, segment, clicked, model)
        for policy in self.policies:
            slot = self._slot(policy, segment)
            keep = offs > self._done(slot, parts, in_batch)
            n = int(keep.sum())
            self._count_skips(segment, len(fresh) - n, duplicates, policy)
            if not n:
                continue
            if n == len(fresh):
                X, rewards, positions, propensities, randomized = X_all, y_all, pos_all, prop_all, rand_all
            else:
                X, rewards, positions = X_all[keep], y_all[keep], pos_all[keep]
                propensities, randomized = prop_all[keep], rand_all[keep]
            if self.fast:  # both losses from one prediction
                losses = learner_drift.model_losses(slot.learner, X, rewards, positions)
                if losses is not None:
                    self.metrics.loss.labels(policy, segment).set(slot.add_loss(losses[0], len(rewards)))
                learner_drift.observe_model(self.drift, policy, segment, slot.learner,
                                            None if losses is None else losses[1])  # fmt: skip  # may respond
            else:
                self._track_loss(policy, segment, slot, X, rewards)
                self.drift.observe_model(
                    policy, segment, slot.learner, X, rewards, positions.tolist()
                )  # may respond
            slot.learner.learn_many(
                X, rewards, positions=positions, propensities=propensities, randomized=randomized
            )
            for p in in_batch:  # the highest offset learned per partition
                learned = offs[keep & (parts == p)]
                if len(learned) and int(learned.max()) > slot.offsets.get(p, -1):
                    slot.offsets[p] = int(learned.max())
            room = 1000 - len(slot.clicked_ts)  # impressions of the first 1,000 clicks since the publish
            if room > 0:
                slot.clicked_ts.extend(
                    fresh[i][1].ts for i in np.flatnonzero(clicked_all & keep)[:room].tolist()
                )
            slot.dirty = True
            self.metrics.examples.labels(policy, segment, "learned").inc(n)
        self._since_publish += len(fresh)

    @staticmethod
    def _done(slot: Slot, parts: npt.NDArray[np.int64], in_batch: list[int]) -> npt.NDArray[np.int64]:
        """The offset ``slot`` has learned up to in each row's partition (-1: none)."""
        if len(in_batch) == 1:
            return np.full(len(parts), slot.offsets.get(in_batch[0], -1), dtype=np.int64)
        done = np.full(len(parts), -1, dtype=np.int64)
        for p in in_batch:
            done[parts == p] = slot.offsets.get(p, -1)
        return done

    def _count_skips(self, segment: str, skipped: int, duplicates: int, policy: str | None = None) -> None:
        counter = self.metrics.examples
        for name in [policy] if policy is not None else self.policies:
            if skipped:
                counter.labels(name, segment, "skipped_offset").inc(skipped)
            if duplicates:
                counter.labels(name, segment, "duplicate").inc(duplicates)

    def _track_loss(
        self, policy: str, segment: str, slot: Slot, X: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> None:
        learner = slot.learner
        if isinstance(learner, LogisticLearner):
            p = np.clip(learner.predict_proba_many(X), 1e-7, 1 - 1e-7)
            clicked = y > 0
            loss = float(-np.sum(np.where(clicked, np.log(p), np.log(1 - p))))
        elif isinstance(learner, LinUCB):
            loss = float(np.sum((learner.mean_many(X) - y) ** 2))
        else:
            return
        self.metrics.loss.labels(policy, segment).set(slot.add_loss(loss, len(y)))

    def _on_drift(self, ev: DriftEvent) -> None:
        self.metrics.drift_events.labels(ev.policy, ev.segment, ev.signal, ev.direction).inc()
        if ev.response is not None:
            self.metrics.drift_responses.labels(ev.policy, ev.segment, ev.response).inc()
        log.warning("drift: %s %s on %s/%s, mean %.4f -> %.4f after %d examples; response: %s",
                    ev.signal, ev.direction, ev.policy, ev.segment, ev.before, ev.after, ev.seen,
                    ev.response or "none")  # fmt: skip

    # -- publishing
    def publish_due(self) -> bool:
        elapsed = self._clock() - self._last_publish
        return self._since_publish >= self.settings.publish_every_n or (
            self._since_publish > 0 and elapsed >= self.settings.publish_interval_s
        )

    def maybe_publish(self, *, force: bool = False) -> int:
        """Publish every changed model if it is time (or ``force``); returns how many were published."""
        if self.store is None or not (force or self.publish_due()):
            return 0
        started = time.perf_counter()
        published = 0
        all_ok = True
        for (policy, segment), slot in list(self._slots.items()):
            if slot.dirty:
                ok = self._publish_one(policy, segment, slot)
                published += ok
                all_ok &= ok
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self._last_publish = self._clock()
        if all_ok:
            self._since_publish = 0
        return published

    def _publish_one(self, policy: str, segment: str, slot: Slot) -> bool:
        assert self.store is not None  # noqa: S101  # checked by the caller
        m = self.metrics
        try:
            version = self.store.publish_learner(
                policy,
                segment,
                slot.learner,
                offsets=slot.offsets,
                log_epoch=self.log_epoch,
                metrics=self._model_metrics(policy, segment, slot),
                expected_version=slot.version,
            )
        except GuardrailError as err:
            m.publishes.labels(policy, "rejected").inc()
            for code in err.codes:
                m.rejected.labels(code).inc()
            return False
        except VersionConflict:
            m.publishes.labels(policy, "conflict").inc()
            m.redis_up.set(1)
            if slot.version and not self._stored(policy, segment):
                # The store lost the model (e.g. Redis restarted without persistence): ours is
                # the newest there is; store it again rather than start over from nothing.
                log.warning("model %s/%s is gone from the store: publishing it again", policy, segment)
                slot.version = 0
                return self._publish_one(policy, segment, slot)
            log.warning("version conflict on %s/%s: reloading the stored model", policy, segment)
            reloaded = self._load(policy, segment)
            # Keep our read position: what the stored model lacks before it is dropped.
            for partition, offset in slot.offsets.items():
                reloaded.offsets[partition] = max(offset, reloaded.offsets.get(partition, -1))
            self._slots[(policy, segment)] = reloaded
            return False
        except StoreUnavailable:
            m.publishes.labels(policy, "unavailable").inc()
            m.redis_up.set(0)
            return False
        slot.version = version
        slot.dirty = False
        now = self._clock()
        for ts in slot.clicked_ts:
            m.impression_to_model.observe(max(0.0, now - ts))
        slot.clicked_ts.clear()
        m.publishes.labels(policy, "ok").inc()
        m.redis_up.set(1)
        m.model_version.labels(policy, segment).set(version)
        m.model_published_at.labels(policy, segment).set(self._clock())
        weights = getattr(slot.learner, "weights", None)
        if isinstance(weights, Mapping):
            for feature, value in weights.items():
                if math.isfinite(value):
                    m.weight.labels(policy, segment, feature).set(value)
        return True

    def _stored(self, policy: str, segment: str) -> bool:
        assert self.store is not None  # noqa: S101  # checked by the caller
        try:
            return self.store.current_version(policy, segment) > 0
        except StoreUnavailable:
            return True  # cannot tell: the usual conflict path reloads when it can

    def _model_metrics(self, policy: str, segment: str, slot: Slot) -> dict[str, float]:
        if slot.loss_n:
            return {"rolling_loss": slot.loss_sum / slot.loss_n, "loss_window": float(slot.loss_n)}
        return {}
