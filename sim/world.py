"""The simulated marketplace: users, their true tastes, and how they click.

A user of segment s clicks a trip shown at position p with probability

    P(click) = examination(p) · attractiveness(u, t)
    examination(p) = (1 / (1 + p)) ** eta                    (position-based model)
    attractiveness(u, t) = σ(φ(u, t) · w_s + appeal_scale · (popularity_t − ½) + ε_t)

with ε_t ~ N(0, appeal_noise²) fixed per trip: a part of appeal no feature
reveals, so no policy over φ reaches the oracle exactly. The oracle ranks by
attractiveness, which maximises expected clicks under this model because
examination falls with position.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.catalog import Catalog
from features.context import Preferences, assign_segment
from features.generator import generate_catalog
from features.phi import phi
from scoring.filters import candidate_rows
from scoring.weights import weights_vector
from sim.config import SimConfig

__all__ = ["SimUser", "World"]


@dataclass(frozen=True)
class SimUser:
    user_id: str
    prefs: Preferences
    segment: str


class World:
    """Catalog, population and ground truth of one seeded configuration."""

    def __init__(self, config: SimConfig, *, today: dt.date | None = None) -> None:
        self.config = config
        self.today = today or dt.date.today()
        self.catalog: Catalog = generate_catalog(
            n_trips=config.catalog_trips, seed=config.catalog_seed, start=self.today
        )
        rng = np.random.default_rng(config.seed)
        self.users = [self._user(rng, i) for i in range(config.users)]
        noise = rng.normal(0.0, config.appeal_noise, len(self.catalog))
        self.appeal = config.appeal_scale * (self.catalog.popularity.astype(np.float64) - 0.5) + noise
        self._taste = {s: weights_vector(w) for s, w in config.taste.items()}
        self._drift = {s: weights_vector(w) for s, w in config.drift_taste.items()}
        self.examination = (1.0 / (1.0 + np.arange(200))) ** config.eta

    def _user(self, rng: np.random.Generator, i: int) -> SimUser:
        from features.catalog import THEMES
        from features.geo import CONTINENTS, COUNTRIES

        def maybe(p: float) -> bool:
            return bool(rng.random() < p)

        prefs = Preferences(
            themes=tuple(rng.choice(THEMES, size=int(rng.integers(1, 4)), replace=False).tolist()) if maybe(0.9) else (),
            difficulty=int(rng.integers(1, 6)) if maybe(0.7) else None,
            duration_days=int(rng.integers(5, 22)) if maybe(0.7) else None,
            budget=float(rng.choice([900.0, 1400.0, 2200.0, 3500.0, 6000.0])) if maybe(0.8) else None,
            countries=tuple(rng.choice(COUNTRIES, size=int(rng.integers(1, 4)), replace=False).tolist()) if maybe(0.5) else (),
            continents=(str(rng.choice(CONTINENTS)),) if maybe(0.4) else (),
        )  # fmt: skip
        return SimUser(f"sim-user-{i}", prefs, assign_segment(prefs))

    def taste(self, segment: str, drifted: bool = False) -> npt.NDArray[np.float64]:
        if drifted and segment in self._drift:
            return self._drift[segment]
        return self._taste[segment]

    def candidates(self, user: SimUser) -> npt.NDArray[np.intp]:
        """The catalog rows the scoring worker may rank for this user (same filters)."""
        return candidate_rows(self.catalog, self.today, None, user.prefs)

    def attractiveness(
        self, user: SimUser, rows: npt.NDArray[np.intp], *, drifted: bool = False
    ) -> npt.NDArray[np.float64]:
        X = phi(self.catalog, user.prefs, self.today, rows).astype(np.float64)
        z = X @ self.taste(user.segment, drifted) + self.appeal[rows]
        return 1.0 / (1.0 + np.exp(-z))

    def click_probabilities(
        self, user: SimUser, rows: npt.NDArray[np.intp], *, drifted: bool = False
    ) -> npt.NDArray[np.float64]:
        """P(click) of each row when shown in this order (position = index)."""
        return self.examination[: len(rows)] * self.attractiveness(user, rows, drifted=drifted)

    def oracle_expected_clicks(self, user: SimUser, k: int, *, drifted: bool = False) -> float:
        """Expected clicks of the best possible slate of k for this user."""
        rows = self.candidates(user)
        if rows.size == 0:
            return 0.0
        a = np.sort(self.attractiveness(user, rows, drifted=drifted))[::-1][:k]
        return float(self.examination[: a.size] @ a)

    def sample_clicks(
        self, rng: np.random.Generator, user: SimUser, rows: npt.NDArray[np.intp], *, drifted: bool = False
    ) -> tuple[npt.NDArray[np.bool_], float]:
        """Clicked flags for a shown slate, and its expected clicks."""
        p = self.click_probabilities(user, rows, drifted=drifted)
        return rng.random(p.size) < p, float(p.sum())
