"""The promotion gate: a new model version serves only once off-policy evaluation says it is not worse.

Why: a learner can publish a worse model (bad data, a bug, a drift it
over-fits); with the gate on, live traffic is served by the store's
*promoted* version (:mod:`stream._model_store_promotion`), not the learner's
latest, and a version is promoted only if it passes the champion/challenger
check of :mod:`bandit.promotion` on recent logged traffic. The champion is the
promoted version, or the rules policy while nothing is promoted (the rules
policy is always the fallback).

:class:`PromotionGate` is plain code (tests drive it without Kafka). It
compares on shadow-scored rows when it has enough for the candidate
(:mod:`stream.promotion_gate_shadow`: exact propensities from the scoring
worker's shadow scoring, read from the impressions topic), else on re-ranked
logged slates.
:meth:`~PromotionGate.observe` keeps the newest ``window`` examples of each
segment (every variant's traffic: each example carries its logged
propensity); :meth:`~PromotionGate.run_once` looks at every model in the
store and, for a current version that is neither promoted nor decided
(or was left pending and new traffic has arrived since), evaluates it and
writes the verdict — promote (the pointer moves, atomically with the
verdict), hold or pending, with the reason and the evidence — and counts it
(``smarttrip_gate_decisions_total``). :func:`stream.promotion_gate_worker.run_gate_worker` is the thin
loop of ``smarttrip worker --mode gate``: it reads the examples topic from
its end minus the window and runs the gate every ``interval_s``.

Settings (``GateSettings.from_env``, prefix ``SMARTTRIP_GATE_``):
``ESTIMATOR`` (dr; snipw, sndr), ``MARGIN`` (0.005, in clicks per shown item),
``MIN_EXAMPLES`` (2000), ``MIN_ESS`` (100), ``EPSILON`` (0.02, the serving
exploration), ``CLIP`` (10, importance-weight clipping; 0 = none),
``WINDOW`` (20000 examples per segment), ``INTERVAL_S`` (10), ``SHADOW_WAIT_S``
(60; 0 = do not nominate: judge on re-ranked slates at once).

Nomination: with ``SHADOW_WAIT_S`` > 0 the gate nominates the version it
judges (the store's ``nominated`` pointer); the scoring workers shadow-score
the nominee rather than the learner's ever-moving latest version, so
shadow-scored rows accumulate for one version. The gate waits up to
``SHADOW_WAIT_S`` for ``MIN_EXAMPLES`` of them (pending meanwhile), then
judges on the re-ranked slates; a decision clears the nomination and the
next run nominates the new current version.
The scoring worker serves promoted versions with ``SMARTTRIP_MODEL_SERVE=promoted``.

Why DR and clipping by default: the examples log the shown slate, not the
candidate set, so a policy is evaluated by re-ranking each logged slate
(:func:`bandit.ope_inputs.model_policy_data`), and its probabilities live on
the slate while the logged propensities live on the whole candidate set. On
simulated traffic (:mod:`sim.world`, rules logging with ε = 0.05, 10,000
examples) a learned logistic model truly worth 0.083 clicks per shown item
against the rules' 0.059 was rated *worse* by SNIPS (0.038 vs 0.050) and
better by DR with weights clipped at 10 (0.092 vs 0.063); the negated model
(truly 0.003) was rated worse by both.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from bandit.promotion import Comparison, compare
from bandit.protocol import learner_from_bytes
from monitoring.gate_metrics import GateMetrics
from scoring.linear import rule_scorer
from scoring.policies import RULES_VERSION, LoadedModel, kind_matches
from stream.codec import decode_examples
from stream.errors import EventError
from stream.events import Example
from stream.examples_source import logs_from_examples
from stream.model_store import (
    GateVerdict,
    ModelRecord,
    ModelStore,
    ModelStoreError,
    ModelSummary,
    PromotionConflict,
    StoreUnavailable,
)
from stream.promotion_gate_settings import GateSettings, GateSettingsError
from stream.promotion_gate_shadow import ShadowLog, shadow_comparison

__all__ = ["GateOutcome", "GateSettings", "GateSettingsError", "PromotionGate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateOutcome:
    """What one evaluation decided (also written to the store as a :class:`GateVerdict`)."""

    policy: str
    segment: str
    version: int
    verdict: GateVerdict
    promoted: bool


class PromotionGate:
    """Champion/challenger checks of every model in ``store`` (see the module docstring)."""

    def __init__(
        self,
        store: ModelStore,
        settings: GateSettings | None = None,
        *,
        metrics: GateMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings or GateSettings()
        self.metrics = metrics or GateMetrics()
        self.clock = clock
        self._window: dict[str, deque[Example]] = {}
        self._seen: dict[str, int] = {}  # examples observed per segment (ever)
        self._evaluated_at: dict[tuple[str, str, int], int] = {}  # examples seen at the last pending verdict
        self.shadows = ShadowLog(self.settings.window)  # shadow fields of recent impressions
        self._nominated_at: dict[tuple[str, str, int], float] = {}  # when this gate nominated a version

    # -- input
    def observe(self, example: Example) -> None:
        """Keep ``example`` in its segment's window (oldest out first)."""
        window = self._window.get(example.segment)
        if window is None:
            window = self._window[example.segment] = deque(maxlen=self.settings.window)
        window.append(example)
        self._seen[example.segment] = self._seen.get(example.segment, 0) + 1

    def observe_many(self, examples: Iterable[Example]) -> None:
        for ex in examples:
            self.observe(ex)

    def observe_raw(self, value: bytes | None) -> bool:
        """Decode and keep one examples-topic record (one example or a slate's); a bad one is
        counted by reason, not raised."""
        try:
            examples = decode_examples(value or b"")
        except EventError as err:
            self.metrics.bad_examples.labels(err.reason).inc()
            return False
        self.observe_many(examples)
        return True

    def observe_impression_raw(self, value: bytes | None) -> bool:
        """Keep the shadow field of an impressions-topic record (:mod:`stream.promotion_gate_shadow`).

        Returns True if one was kept; a malformed one is counted by reason, not raised.
        """
        outcome = self.shadows.add_impression(value)
        if outcome not in ("kept", "absent"):
            self.metrics.bad_examples.labels(outcome).inc()
        return outcome == "kept"

    def window_sizes(self) -> dict[str, int]:
        """Examples held per segment."""
        return {segment: len(window) for segment, window in self._window.items()}

    def examples(self, segment: str) -> list[Example]:
        """The newest examples of ``segment`` (at most ``window``), latest revision of each id."""
        final: dict[str, Example] = {}
        for ex in self._window.get(segment, ()):
            old = final.get(ex.example_id)
            if old is None or ex.revision >= old.revision:
                final[ex.example_id] = ex
        return list(final.values())

    # -- decisions
    def run_once(self) -> list[GateOutcome]:
        """Evaluate every current version that awaits a decision; returns what was decided.

        Store trouble on one model is logged and counted and the others go on;
        an unreachable Redis (:class:`StoreUnavailable`) propagates.
        """
        for segment, window in self._window.items():
            self.metrics.window.labels(segment).set(len(window))
        outcomes = []
        for summary in self.store.models():
            try:
                target = self._target(summary)
                if target is not None:
                    outcomes.append(self.evaluate(summary.policy, summary.segment, target))
            except StoreUnavailable:
                raise
            except ModelStoreError as exc:
                self.metrics.errors.labels("store").inc()
                log.error("gate %s/%s: %s", summary.policy, summary.segment, exc)
        return outcomes

    def _target(self, s: ModelSummary) -> int | None:
        """The version to judge now: the nominee while it is undecided, else the current version."""
        nominee = s.nominated_version
        if nominee is not None:
            decided = s.nominated_verdict is not None and s.nominated_verdict.decision != "pending"
            if nominee != s.promoted_version and not decided:
                return nominee if self._fresh(s.policy, s.segment, nominee, s.nominated_verdict) else None
            self.store.nominate(s.policy, s.segment, None)  # decided elsewhere (or by ops): the next one
        if s.current_version == 0 or s.current_version == s.promoted_version:
            return None
        return s.current_version if self._fresh(s.policy, s.segment, s.current_version, s.verdict) else None

    def _fresh(self, policy: str, segment: str, version: int, verdict: GateVerdict | None) -> bool:
        """Undecided, or pending and new traffic has arrived since (held and promoted are final)."""
        if verdict is None:
            return True
        if verdict.decision != "pending":
            return False
        seen_then = self._evaluated_at.get((policy, segment, version))
        return seen_then is None or self._seen.get(segment, 0) > seen_then

    def evaluate(self, policy: str, segment: str, version: int | None = None) -> GateOutcome:
        """Decide on ``version`` (default: the current one) against the champion; record and count it."""
        candidate = self.store.get(policy, segment, version)
        promoted = self.store.promoted_version(policy, segment)
        champion = None if promoted is None else self.store.get(policy, segment, promoted)
        champion_name = "the rules policy" if champion is None else f"promoted v{champion.version}"
        examples = [e for e in self.examples(segment) if len(e.phi) > 0]
        since = self._nominate(policy, segment, candidate.version)
        comparison: Comparison | None = None
        reason = ""
        if not examples:
            reason = "no logged examples of this segment yet"
        else:
            try:
                comparison = self._compare(candidate, champion, examples, champion_name, since)
            except _Waiting as exc:
                reason = str(exc)
            except _Unloadable as exc:
                self.metrics.errors.labels("load").inc()
                reason = str(exc)
            except ValueError as exc:  # OPEInputError and mismatched φ widths
                self.metrics.errors.labels("evaluate").inc()
                reason = f"cannot evaluate: {exc}"
        if comparison is not None:
            decision, reason, details = comparison.decision, comparison.reason, comparison.details()
        else:
            decision, details = (
                ("hold" if reason.startswith("candidate") else "pending"),
                {"n": len(examples)},
            )
        verdict = GateVerdict(
            decision, reason, float(self.clock()), champion_version=promoted, details=details
        )
        moved = False
        if decision == "promote":
            try:
                self.store.promote(
                    policy, segment, candidate.version, verdict, expected_promoted=promoted or 0
                )
                moved = True
                self.metrics.promoted_version.labels(policy, segment).set(candidate.version)
            except PromotionConflict as exc:  # another gate (or ops) moved the pointer: decide again next run
                log.warning("gate %s/%s v%d: %s", policy, segment, candidate.version, exc)
                return GateOutcome(policy, segment, candidate.version, verdict, False)
        else:
            self.store.record_verdict(policy, segment, candidate.version, verdict)
            if decision == "pending":
                self._evaluated_at[(policy, segment, candidate.version)] = self._seen.get(segment, 0)
        if decision != "pending" and since is not None:
            self.store.nominate(policy, segment, None)  # decided: the scoring workers stop shadow-scoring it
            self._nominated_at.pop((policy, segment, candidate.version), None)
        self.metrics.decisions.labels(policy, segment, decision).inc()
        log.info("gate %s/%s v%d: %s (%s)", policy, segment, candidate.version, decision, reason)
        return GateOutcome(policy, segment, candidate.version, verdict, moved)

    def _nominate(self, policy: str, segment: str, version: int) -> float | None:
        """Nominate ``version`` for shadow scoring (if waiting for it is on); returns since when (clock)."""
        if self.settings.shadow_wait_s <= 0:
            return None
        key = (policy, segment, version)
        if key not in self._nominated_at:
            if self.store.nominated_version(policy, segment) != version:
                self.store.nominate(policy, segment, version)
            self._nominated_at[key] = float(self.clock())
        return self._nominated_at[key]

    def _compare(
        self,
        candidate: ModelRecord,
        champion: ModelRecord | None,
        examples: list[Example],
        champion_name: str,
        nominated_since: float | None = None,
    ) -> Comparison:
        champion_label = RULES_VERSION if champion is None else _label(champion)
        exact, n_shadow = shadow_comparison(
            examples,
            self.shadows,
            _label(candidate),
            champion_label,
            self.settings.rule,
            champion_name=champion_name,
        )
        if exact is not None:
            return exact
        waited = None if nominated_since is None else float(self.clock()) - nominated_since
        if waited is not None and waited < self.settings.shadow_wait_s:
            raise _Waiting(
                f"waiting for shadow-scored traffic: {n_shadow:,} of {self.settings.rule.min_examples:,} "
                f"examples after {waited:.0f} s (re-ranked slates after {self.settings.shadow_wait_s:g} s)"
            )
        logs = logs_from_examples(examples)
        if logs.phi is None:
            raise ValueError("φ rows of the examples differ in width")
        X = logs.phi.astype(np.float32)
        cand = _scores(candidate, X, "candidate")
        champ = rule_scorer().score_many(X) if champion is None else _scores(champion, X, champion_name)
        return compare(logs, cand, champ, self.settings.rule, champion_name=champion_name)


def _label(record: ModelRecord) -> str:
    """The model_version the scoring worker logs for ``record`` (scoring.policies.LoadedModel.label)."""
    return f"{record.policy}/{record.segment}/v{record.version}"


class _Waiting(Exception):
    """The nominated candidate has too few shadow-scored rows yet, and the wait is not over."""


class _Unloadable(ValueError):
    """A stored version cannot be scored (bad bytes, wrong kind, non-finite scores)."""


def _scores(record: ModelRecord, X: np.ndarray, who: str) -> np.ndarray:
    """Scores of the φ rows as the scoring worker would compute them for this record."""
    try:
        learner = learner_from_bytes(record.model_bytes)
    except Exception as exc:  # ModelFormatError and anything a corrupt blob triggers
        raise _Unloadable(f"{who} v{record.version} cannot be loaded: {exc}") from None
    if not kind_matches(record.policy, learner):
        raise _Unloadable(f"{who} v{record.version} holds a {getattr(learner, 'kind', '?')!r} learner")
    model = LoadedModel(record.policy, record.segment, record.version, learner, record.meta.created_at, 0.0)
    scores = model.score(X, record.segment)
    if scores.shape != (X.shape[0],) or not np.isfinite(scores).all():
        raise _Unloadable(f"{who} v{record.version} gives non-finite scores")
    return scores
