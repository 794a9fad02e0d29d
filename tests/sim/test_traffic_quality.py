"""Traffic quality in the simulator: bots are filtered, one user is capped, drift is detected and answered.

Bots and drift run the in-process closed loop (:mod:`sim.closed_loop`) with
the join's :class:`~stream.quality_gate.QualityGate` and the learner
worker's :class:`~bandit.drift.DriftMonitor`. The cap runs open loop (a fixed
stream of users' slates plus one user's 10,000 clicks through the same gate
into a logistic learner), where the bound can be checked exactly: SGD steps
on a convex, smooth loss with a small constant rate are non-expansive, so the
weights with the user's admitted examples differ from those without by at
most the sum of those examples' own step lengths — and the cap bounds how
many there are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from bandit.drift import DriftConfig, DriftEvent, DriftMonitor
from bandit.logistic import LogisticLearner
from bandit.protocol import Learner
from features.phi import PHI_NAMES, phi
from scoring.weights import SCORING_WEIGHTS
from sim.closed_loop import LoopSettings, ctr_by_variant, run_closed_loop
from sim.config import load_config
from sim.world import World
from stream.events import Impression, Interaction, SlateItem
from stream.learner_runtime import DEFAULT_POLICIES
from stream.quality_gate import QualityGate
from stream.traffic_filter import TrafficRules
from stream.user_cap import UserCap

pytestmark = pytest.mark.slow

POLICIES = {k: DEFAULT_POLICIES[k] for k in ("logistic", "linucb")}
VARIANTS = ("rules", "logistic", "linucb")
BOTS: dict[str, Any] = {
    "seed": 31,
    "catalog": {"trips": 500, "seed": 31},
    "traffic": {"rate_rps": 40, "duration_s": 60},
}
AFTER_DRIFT = {"BASE_SCORE": -3.0, "GEO_CONTINENT": 1.5, "GEO_DIRECT_COUNTRY": 1.0, "PRICE_GAP": -1.5,
               "THEME_FULL": -0.5, "DEPARTING_SOON": 1.0}  # fmt: skip
DRIFT: dict[str, Any] = {
    "seed": 23,
    "catalog": {"trips": 500, "seed": 23},
    "drift": {"at_fraction": 0.5, "taste": {s: AFTER_DRIFT for s in
                                            ("adventure", "luxury", "budget", "culture", "general")}},
    "traffic": {"rate_rps": 40, "duration_s": 120},
}  # fmt: skip


def _weights(learner: Learner) -> npt.NDArray[np.float64]:
    w = getattr(learner, "weights")  # noqa: B009  # both learners expose named weights
    return np.array([w[n] for n in PHI_NAMES])


def _distance(a: dict[tuple[str, str], Learner], b: dict[tuple[str, str], Learner], policy: str) -> float:
    """Largest L2 distance between the two runs' weights of ``policy`` over the segments."""
    return max(float(np.linalg.norm(_weights(a[k]) - _weights(b[k]))) for k in a if k[0] == policy)


def test_bot_sessions_are_filtered_and_without_the_filter_they_move_the_weights() -> None:
    cfg = load_config(BOTS)
    world = World(cfg)
    runs: dict[str, dict[tuple[str, str], Learner]] = {"none": {}, "filtered": {}, "unfiltered": {}}
    gate = QualityGate(rules=TrafficRules(), cap=UserCap())
    share = {}
    for name, bots, g in (("none", 0.0, None), ("filtered", 0.05, gate), ("unfiltered", 0.05, None)):
        settings = LoopSettings(variants=VARIANTS, bot_share=bots)
        outcomes = run_closed_loop(cfg, settings=settings, policies=POLICIES, world=world, gate=g,
                                   learners=runs[name])  # fmt: skip
        share[name] = ctr_by_variant(outcomes)
    assert sum(gate.flagged.values()) >= 20, gate.flagged  # ~5 % of 800 sessions were bots, all caught
    assert set(gate.flagged) <= {"fast_clicks", "click_flood"} and "user_cap" not in gate.dropped
    print(
        f"bots: flagged {gate.flagged}, dropped {gate.dropped}, "
        f"unfiltered moved {[_distance(runs['none'], runs['unfiltered'], p) for p in POLICIES]}, shares {share}"
    )
    for policy in POLICIES:
        # Filtered, the learners saw exactly the users' examples: the weights are those of the run without bots.
        assert _distance(runs["none"], runs["filtered"], policy) < 1e-9
        assert share["filtered"][policy] == share["none"][policy]
        # Unfiltered, bots clicking everything move them measurably and cost the users clicks.
        moved = _distance(runs["none"], runs["unfiltered"], policy)
        assert moved > (1.0 if policy == "logistic" else 0.05), (policy, moved)
        assert share["unfiltered"][policy][1] < share["none"][policy][1] - 0.1, share


def _slate(world: World, user_id: str, session: str, request: str, rows: npt.NDArray[np.intp],
           X: npt.NDArray[np.float64], ts: float, segment: str) -> Impression:  # fmt: skip
    items = tuple(SlateItem(f"t{r}", k, 0.0, 1.0, ()) for k, r in enumerate(rows.tolist()))
    return Impression(request, session, user_id, segment, "rules", "m", "v", ts, items)


def test_one_user_sending_10000_clicks_is_held_to_the_caps_bound() -> None:
    cfg = load_config({"seed": 32, "catalog": {"trips": 400, "seed": 32}, "users": {"count": 400}})
    world = World(cfg)
    segment = "general"
    users = [u for u in world.users if u.segment == segment]
    rng = np.random.default_rng(32)
    price = PHI_NAMES.index("PRICE_GAP")
    duration, cap, window = 300.0, 100, 60.0
    # (ts, user, session, rows shown, φ rows, clicked positions, click delays)
    traffic: list[
        tuple[float, str, str, npt.NDArray[np.intp], npt.NDArray[np.float64], list[int], list[float]]
    ] = []
    for i in range(1200):  # the segment's users: 4 slates/s
        user = users[int(rng.integers(len(users)))]
        rows = rng.permutation(world.candidates(user))[:10]
        X = phi(world.catalog, user.prefs, world.today, rows).astype(np.float64)
        clicked, _ = world.sample_clicks(rng, user, rows)
        hits = np.flatnonzero(clicked).tolist()
        traffic.append(
            (i * 0.25, user.user_id, f"s{i}", rows, X, hits, [2.0 + 3 * n for n in range(len(hits))])
        )
    attacker = users[0]
    # One user, 3 clicks per slate at a human pace, a new session every 3 slates: 10,002 clicks.
    for i in range(3334):
        rows = rng.permutation(world.candidates(attacker))[:10]
        X = phi(world.catalog, attacker.prefs, world.today, rows).astype(np.float64)
        hits = np.argsort(-X[:, price])[:3].tolist()  # steer towards expensive trips
        traffic.append((i * duration / 3334, "attacker", f"a{i // 3}", rows, X, hits, [1.0, 3.0, 5.0]))
    traffic.sort(key=lambda r: r[0])

    def learn(with_attacker: bool, gate: QualityGate) -> tuple[LogisticLearner, float, dict[int, int]]:
        # Constant step (lr_power 0) for the non-expansiveness bound; otherwise the live configuration.
        model = LogisticLearner(prior=dict(SCORING_WEIGHTS), prior_scale=0.05, prior_intercept=-3.0, lr=0.1,
                                lr_power=0.0, position_bias="estimated", seed=0)  # fmt: skip
        bound = 0.0
        admitted: dict[int, int] = {}
        for ts, user_id, session, rows, X, hits, delays in traffic:
            if user_id == "attacker" and not with_attacker:
                continue
            request = f"{session}-{ts}"
            gate.observe(_slate(world, user_id, session, request, rows, X, ts, segment))
            for n, k in enumerate(hits):
                gate.observe(Interaction(f"{request}-{k}", session, f"t{rows[k]}", "click", ts + delays[n],
                                         request_id=request))  # fmt: skip
            y = np.zeros(len(rows))
            y[hits] = 1.0
            for k in range(len(rows)):
                if gate.admit_parts(session, user_id, ts) is not None:
                    continue
                before = model.weight_vector
                model.learn_one(X[k], float(y[k]), position=k)
                if user_id == "attacker":
                    bound += float(np.linalg.norm(model.weight_vector - before))
                    admitted[int(ts // window)] = admitted.get(int(ts // window), 0) + 1
        return model, bound, admitted

    honest, _, _ = learn(False, QualityGate(rules=TrafficRules()))
    capped_gate = QualityGate(rules=TrafficRules(), cap=UserCap(max_examples=cap, window_s=window))
    capped, bound, admitted = learn(True, capped_gate)
    open_gate = QualityGate(rules=TrafficRules())
    uncapped, _, _ = learn(True, open_gate)

    assert not open_gate.flagged  # the bot rules do not catch this user: only the cap does
    assert max(admitted.values()) <= cap and sum(admitted.values()) <= cap * duration / window
    assert capped_gate.dropped["user_cap"] >= 33_340 - cap * duration / window
    moved = float(np.linalg.norm(capped.weight_vector - honest.weight_vector))
    moved_uncapped = float(np.linalg.norm(uncapped.weight_vector - honest.weight_vector))
    assert moved <= bound + 1e-9, (moved, bound)  # the cap's bound: at most its admitted examples' steps
    assert moved_uncapped > 5 * moved, (moved, moved_uncapped)
    print(
        f"cap: admitted {sum(admitted.values())}, moved {moved:.3f} <= bound {bound:.3f}; "
        f"uncapped moved {moved_uncapped:.3f}"
    )


def test_a_taste_flip_is_detected_and_the_response_recovers_faster() -> None:
    cfg = load_config(DRIFT)
    drift_at = cfg.duration_s / 2
    runs = {}
    monitors = {}
    for respond in (False, True):
        monitors[respond] = DriftMonitor(DriftConfig(respond=respond))
        outcomes = run_closed_loop(cfg, settings=LoopSettings(variants=VARIANTS), policies=POLICIES,
                                   drift=monitors[respond])  # fmt: skip
        runs[respond] = outcomes
    outcomes = runs[True]
    # Examples learned before the drift (every slate shown before drift_at less the delay), per segment for
    # the loss signal and per (serving policy, segment) for the click signal.
    before: dict[tuple[str, ...], int] = {}
    for o in outcomes:
        if o.t < drift_at - LoopSettings().delay_s:
            for key in ((o.segment,), (o.variant, o.segment)):
                before[key] = before.get(key, 0) + o.slots
    events = monitors[True].events

    def base(e: DriftEvent) -> int:
        return before[(e.segment,) if e.signal == "loss" else (e.policy, e.segment)]

    early = [e for e in events if e.response and e.seen <= base(e)]
    bad = [e for e in events if e.seen > base(e) and e.direction == ("up" if e.signal == "loss" else "down")]
    delays = sorted(e.seen - base(e) for e in bad)
    assert delays and delays[0] <= 1000, delays  # the flip is detected within 1,000 examples of the stream
    assert any(e.response for e in events)
    last = {r: ctr_by_variant(runs[r], since=drift_at + 30) for r in runs}
    print(
        f"drift: detections after the flip at {delays[:5]} examples; responses before it {len(early)}; "
        f"after {sum(1 for e in events if e.response) - len(early)}; last 30 s {last}"
    )
    for policy in POLICIES:
        (ctr_off, share_off), (ctr_on, share_on) = last[False][policy], last[True][policy]
        assert share_on > share_off + 0.05, (policy, last)
        assert ctr_on > ctr_off, (policy, last)
