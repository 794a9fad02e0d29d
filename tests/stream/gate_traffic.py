"""Logged traffic of the simulated marketplace, as the join emits it: :class:`Example` records.

The rules policy (or the ``served`` scorer) serves (ε-greedy per position, the scoring worker's own
sampler and propensities) and users click as :class:`sim.world.World` says;
every shown trip becomes one example with its φ row, position, logged
propensity and click. With ``shadow`` (a label and a scorer), every request is
also shadow-scored as the scoring worker does (:mod:`scoring.shadow`), and the
shadow fields are added to ``shadows``. Seeded: the same arguments give the
same examples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from features.phi import phi
from scoring.exploration import epsilon_greedy, request_rng
from scoring.linear import rule_scorer
from scoring.policies import RULES_VERSION
from scoring.shadow import shadow_propensities
from sim.config import SimConfig
from sim.world import World
from stream.events import Example, Labels

Scorer = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float64]]


def logged_examples(
    n_requests: int,
    *,
    seed: int = 0,
    epsilon: float = 0.05,
    segment: str | None = None,
    world: World | None = None,
    served: tuple[str, Scorer] | None = None,
    shadow: tuple[str, Scorer] | None = None,
    shadows: dict[str, tuple[str, list[float]]] | None = None,
) -> list[Example]:
    """Examples of ``n_requests`` requests (only users of ``segment`` when given).

    ``served`` is (model_version label, scorer) of what serves, default the rules policy.
    """
    world = world or World(SimConfig(seed=seed, users=600, catalog_trips=600))
    rng = np.random.default_rng(seed)
    users = [u for u in world.users if segment is None or u.segment == segment]
    rules = rule_scorer()
    label, score = served if served is not None else (RULES_VERSION, rules.score_many)
    policy = label.split("/", 1)[0]
    out: list[Example] = []
    for i in range(n_requests):
        user = users[int(rng.integers(len(users)))]
        rows = world.candidates(user)
        if rows.size == 0:
            continue
        X = phi(world.catalog, user.prefs, world.today, rows)
        slate = epsilon_greedy(score(X), world.config.k, epsilon, request_rng(f"{seed}-{i}"))
        if shadow is not None and shadows is not None:
            props = shadow_propensities(shadow[1](X), slate.order, epsilon)
            shadows[f"r{seed}-{i}"] = (shadow[0], props.tolist())
        shown = rows[slate.order]
        clicked, _ = world.sample_clicks(rng, user, shown)
        drawn = slate.randomized if slate.randomized is not None else np.zeros(len(shown), dtype=bool)
        for pos, (row, click) in enumerate(zip(slate.order.tolist(), clicked.tolist(), strict=True)):
            trip = str(world.catalog.trip_ids[rows[row]])
            out.append(
                Example(
                    example_id=f"r{seed}-{i}:{trip}",
                    request_id=f"r{seed}-{i}",
                    trip_id=trip,
                    session_id=f"s{seed}-{i // 3}",
                    user_id=user.user_id,
                    segment=user.segment,
                    policy=policy,
                    model_version=label,
                    feature_version="sim",
                    phi=tuple(float(x) for x in X[row]),
                    position=pos,
                    propensity=float(slate.propensities[pos]),
                    reward=float(click),
                    labels=Labels(click=int(click)),
                    clicked=bool(click),
                    examined=True,
                    ts=1.7e9 + i,
                    randomized=bool(drawn[pos]),
                )
            )
    return out
