"""The closed loop in one process: same serving and learning code, no Kafka, no HTTP.

:func:`run_closed_loop` plays the simulator's traffic through the scoring
worker's own pieces (:func:`scoring.policies.score_request`, the samplers of
:mod:`scoring.exploration`, the experiment's hash split) and teaches the
learners of :data:`stream.learner_runtime.DEFAULT_POLICIES` with the labelled
examples the join would emit, delayed as the stream delays them: examples of
a request reach the learners ``delay_s`` of simulated time later (the
attribution window plus the watermark), and the serving side sees a new model
version every ``publish_s``. It runs ~1,000 requests per second, so it can
sweep configurations and seeds (the multi-configuration tests, tuning the
learners) where the full demo (:mod:`sim.demo`) runs one configuration in
minutes. What it leaves out is exactly the plumbing the demo exists to show.

Every random draw comes from the config's seed, so a run is reproducible.

Traffic quality (:mod:`stream.quality_gate`, :mod:`bandit.drift`): with a
``gate`` every request is shown to the join's bot rules as an impression and
its clicks (users click 1 s + Exp(3 s) after the slate), and every example
passes :meth:`~stream.quality_gate.QualityGate.admit` before it is learned;
``LoopSettings.bot_share`` adds that many bot sessions per user session
(clicking every trip shown, 50 ms apart; extra traffic with its own random
stream, so the users' traffic is unchanged); with a ``drift`` monitor the
learners are watched and answered as in the learner worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bandit.drift import DriftMonitor
from bandit.protocol import Learner
from features.phi import phi
from scoring.exploration import epsilon_greedy, plackett_luce, request_rng
from scoring.policies import LoadedModel, Scored, score_request
from sim.config import SimConfig
from sim.driver import RequestOutcome
from sim.world import SimUser, World
from stream.events import Impression, Interaction, SlateItem
from stream.learner_runtime import DEFAULT_POLICIES
from stream.quality_gate import QualityGate

__all__ = ["LoopSettings", "run_closed_loop"]


@dataclass(frozen=True)
class LoopSettings:
    """How the in-process loop mimics the stream (defaults: the demo's settings)."""

    variants: tuple[str, ...] = ("rules", "logistic", "linucb", "vw")
    epsilon: float = 0.02  # sim.demo.EPSILON
    delay_s: float = 4.0  # join window (3 s) + watermark delay (1 s)
    publish_s: float = 0.5  # learner publish interval + model cache refresh
    bot_share: float = 0.0  # bot sessions added per user session (they click every trip shown)


@dataclass
class _Pending:
    due: float
    segment: str
    X: npt.NDArray[np.float64]
    rewards: npt.NDArray[np.float64]
    positions: npt.NDArray[np.int64]
    propensities: npt.NDArray[np.float64]
    randomized: npt.NDArray[np.bool_]
    variant: str = ""
    session_id: str = ""
    user_id: str = ""
    ts: float = 0.0


def run_closed_loop(
    config: SimConfig,
    *,
    settings: LoopSettings | None = None,
    policies: Mapping[str, Callable[[], Learner]] | None = None,
    world: World | None = None,
    gate: QualityGate | None = None,
    drift: DriftMonitor | None = None,
    learners: dict[tuple[str, str], Learner] | None = None,
) -> list[RequestOutcome]:
    """Outcomes of ``rate_rps · duration_s`` simulated requests, as the HTTP driver records them.

    Bot requests (``settings.bot_share``) are served and learned from but not
    among the outcomes: these measure what the users get. ``learners``, when
    given, is filled with the (policy, segment) learners as they learn.
    """
    settings = settings or LoopSettings()
    factories = dict(policies or DEFAULT_POLICIES)
    world = world or World(config)
    rng = np.random.default_rng(config.seed)
    learners = {} if learners is None else learners
    serving: dict[tuple[str, str], LoadedModel] = {}
    pending: list[_Pending] = []
    outcomes: list[RequestOutcome] = []
    n_requests = int(config.rate_rps * config.duration_s)
    next_publish = settings.publish_s
    oracle_cache: dict[tuple[str, bool], float] = {}
    version = 0
    user = world.users[0]
    side = np.random.default_rng([config.seed, 1])  # bots: not the users' random stream
    click_times = np.random.default_rng([config.seed, 2])
    n_bots = 0
    for i in range(n_requests):
        t = i / config.rate_rps
        if i % config.requests_per_session == 0:
            user = world.users[int(rng.integers(len(world.users)))]
            if settings.bot_share and side.random() < settings.bot_share:
                n_bots += 1
                bot = world.users[int(side.integers(len(world.users)))]
                bot = SimUser(f"bot-{n_bots}", bot.prefs, bot.segment)
                for j in range(config.requests_per_session):
                    p = _serve(world, config, settings, serving, bot, f"{config.seed}-bot-{n_bots}-{j}")
                    if p is not None:
                        p.rewards[:], p.due = 1.0, t + settings.delay_s
                        p.session_id, p.ts = f"bot-session-{n_bots}", t
                        _observe(gate, p, np.arange(1, p.rewards.size + 1) * 0.05)
                        pending.append(p)
        drifted = config.drift_at_fraction is not None and t >= config.drift_at_fraction * config.duration_s
        while pending and pending[0].due <= t:
            _learn(pending.pop(0), learners, factories, gate, drift)
        if t >= next_publish:
            # Serving reads the learners themselves: they change only in _learn, so a
            # snapshot per publish would cost copies without changing what is served.
            version += 1
            serving = {key: LoadedModel(key[0], key[1], version, lr, t, t) for key, lr in learners.items()}
            next_publish = t + settings.publish_s
        variant = settings.variants[_bucket(user.user_id, len(settings.variants))]
        rows = world.candidates(user)
        if rows.size == 0:
            continue
        X = phi(world.catalog, user.prefs, world.today, rows)
        scored = score_request(variant, serving.get((variant, user.segment)), X, user.segment)
        order, props, randomized = _slate(scored, config.k, settings.epsilon, f"{config.seed}-{i}")
        shown = rows[order]
        clicked, expected = world.sample_clicks(rng, user, shown, drifted=drifted)
        key = (user.user_id, drifted)
        if key not in oracle_cache:
            oracle_cache[key] = world.oracle_expected_clicks(user, config.k, drifted=drifted)
        outcomes.append(
            RequestOutcome(t, variant, scored.policy, user.segment, int(shown.size), int(clicked.sum()),
                           expected, oracle_cache[key], 0.0, drifted)
        )  # fmt: skip
        done = _Pending(t + settings.delay_s, user.segment, X[order].astype(np.float64), clicked.astype(np.float64),
                        np.arange(shown.size, dtype=np.int64), props, randomized, variant,
                        f"s{i // config.requests_per_session}", user.user_id, t)  # fmt: skip
        if gate is not None:
            _observe(gate, done, np.sort(1.0 + click_times.exponential(3.0, shown.size)))
        pending.append(done)
    return outcomes


def _serve(
    world: World, config: SimConfig, settings: LoopSettings, serving: Mapping[tuple[str, str], LoadedModel],
    user: SimUser, request_id: str,
) -> _Pending | None:  # fmt: skip
    """A slate served to ``user`` (rewards zero: the caller sets them)."""
    variant = settings.variants[_bucket(user.user_id, len(settings.variants))]
    rows = world.candidates(user)
    if rows.size == 0:
        return None
    X = phi(world.catalog, user.prefs, world.today, rows)
    scored = score_request(variant, serving.get((variant, user.segment)), X, user.segment)
    order, props, randomized = _slate(scored, config.k, settings.epsilon, request_id)
    return _Pending(0.0, user.segment, X[order].astype(np.float64), np.zeros(order.size),
                    np.arange(order.size, dtype=np.int64), props, randomized, variant, "", user.user_id)  # fmt: skip


def _observe(gate: QualityGate | None, p: _Pending, click_delays: npt.ArrayLike) -> None:
    """Show the gate the impression of ``p`` and its clicks, ``click_delays`` after it (one per clicked row)."""
    if gate is None:
        return
    delays = np.asarray(click_delays, dtype=np.float64)
    request_id = f"{p.session_id}-{p.ts:.4f}"
    items = tuple(SlateItem(f"row{k}", k, 0.0, float(p.propensities[k]), ()) for k in range(p.rewards.size))
    gate.observe(
        Impression(request_id, p.session_id, p.user_id, p.segment, p.variant, "sim", "sim", p.ts, items)
    )
    for n, k in enumerate(np.flatnonzero(p.rewards > 0).tolist()):
        gate.observe(Interaction(f"{request_id}-{k}", p.session_id, f"row{k}", "click",
                                 p.ts + float(delays[n]), request_id=request_id))  # fmt: skip


def _learn(
    p: _Pending,
    learners: dict[tuple[str, str], Learner],
    factories: Mapping[str, Callable[[], Learner]],
    gate: QualityGate | None = None,
    drift: DriftMonitor | None = None,
) -> None:
    if gate is not None:
        keep = np.array(
            [gate.admit_parts(p.session_id, p.user_id, p.ts) is None for _ in range(p.rewards.size)]
        )
        if not keep.all():
            p = _Pending(p.due, p.segment, p.X[keep], p.rewards[keep], p.positions[keep], p.propensities[keep],
                         p.randomized[keep], p.variant, p.session_id, p.user_id, p.ts)  # fmt: skip
        if p.rewards.size == 0:
            return
    for policy, make in factories.items():
        if (policy, p.segment) not in learners:
            learners[(policy, p.segment)] = make()
    if drift is not None:
        drift.observe_clicks(p.variant, p.segment, p.rewards > 0, learners.get((p.variant, p.segment)))
    for policy in factories:
        learner = learners[(policy, p.segment)]
        if drift is not None:
            drift.observe_model(policy, p.segment, learner, p.X, p.rewards, p.positions)
        learner.learn_many(p.X, p.rewards, positions=p.positions, propensities=p.propensities,
                           randomized=p.randomized)  # fmt: skip


def _slate(
    scored: Scored, k: int, epsilon: float, request_id: str
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    rng = request_rng(request_id)
    slate = plackett_luce(scored.scores, k, rng) if scored.exploration == "pmf" else epsilon_greedy(
        scored.scores, k, epsilon, rng)  # fmt: skip
    randomized = (
        slate.randomized if slate.randomized is not None else np.zeros(len(slate.order), dtype=np.bool_)
    )
    return slate.order, slate.propensities, randomized


def _bucket(user_id: str, n: int) -> int:
    import hashlib

    h = int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "big")
    return h % n if n else 0


def ctr_by_variant(outcomes: list[RequestOutcome], *, since: float = 0.0) -> dict[str, tuple[float, float]]:
    """(CTR, share of oracle) per variant over outcomes at or after ``since``."""
    out: dict[str, tuple[float, float]] = {}
    for v in sorted({o.variant for o in outcomes}):
        rows = [o for o in outcomes if o.variant == v and o.t >= since]
        slots = sum(o.slots for o in rows)
        oracle = sum(o.oracle_clicks for o in rows)
        out[v] = (
            sum(o.clicks for o in rows) / slots if slots else math.nan,
            sum(o.expected_clicks for o in rows) / oracle if oracle else math.nan,
        )
    return out
