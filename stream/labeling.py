"""From raw interactions to labels, reward and the "examined" flag.

Why a module of its own: these are modelling choices, not plumbing. The join
(:mod:`stream.session`) only decides *which* interactions belong to which shown
trip; this module decides what they are worth (:func:`examples_of` turns a slate
and its joined interactions into examples), so analysts can read and change the
rules in one place, and replay tools can relabel logged slates.

Labels
    Per shown trip: the count of each interaction type attached to it and the
    total dwell seconds. Labels keep raw counts; the reward summarises them.

Reward (:class:`RewardConfig`)
    ``reward = max(weight of each type present) + dwell bonus``: the strongest
    engagement counts once (five clicks are not worth five times one click;
    ``booking_start`` is worth more than a click), plus ``dwell_bonus`` when the
    total dwell reaches ``dwell_threshold_s``. The reward is bounded in
    ``[0, max weight + dwell_bonus]`` (5.5 by default), as bandit bounds need.
    Dwell only earns the bonus when positive (a zero threshold is not a gift).

Clicked
    Only real ``click`` events set ``clicked``. A save, contact or
    booking start without a logged click still earns its reward and counts as
    engagement, but is not a click (the UI has buttons on the result card).

Examined (cascade rule, Craswell et al. 2008, "An experimental comparison of
click position-bias models", WSDM)
    Order the slate by displayed position and call the index in that order the
    *rank* (equal to the position when positions are 0..n-1). If some trip was
    engaged with (any label), the user scanned down to the lowest engaged rank
    ``r`` and looked at the next one: ranks ``0..r+1`` are examined. With no
    engagement we only trust the top ``no_click_examined_top_n`` ranks (default
    3) to have been seen. The raw position is kept on every example so
    learners can also model position bias themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from stream.events import Example, Impression, Interaction, Labels
from stream.packed_impression import PackedImpression

__all__ = [
    "RewardConfig",
    "SlateOutcome",
    "examined_by_rank",
    "examples_from",
    "examples_of",
    "label_slate",
    "labels_of",
]


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """Weights of the reward (all finite and non-negative).

    Examples
    --------
    >>> cfg = RewardConfig()
    >>> cfg.reward(Labels(click=3)), cfg.reward(Labels(click=1, booking_start=1, dwell_s=45.0))
    (1.0, 5.5)
    """

    click: float = 1.0
    save: float = 2.0
    contact: float = 3.0
    booking_start: float = 5.0
    dwell_bonus: float = 0.5
    dwell_threshold_s: float = 30.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"RewardConfig.{f.name}: must be a finite number >= 0, got {value!r}")

    def reward(self, labels: Labels) -> float:
        """Strongest engagement weight, plus the dwell bonus when earned."""
        present = (
            (labels.click, self.click),
            (labels.save, self.save),
            (labels.contact, self.contact),
            (labels.booking_start, self.booking_start),
        )
        base = max((weight for count, weight in present if count > 0), default=0.0)
        bonus = self.dwell_bonus if labels.dwell_s > 0 and labels.dwell_s >= self.dwell_threshold_s else 0.0
        return float(base + bonus)

    @property
    def max_reward(self) -> float:
        """Upper bound of :meth:`reward`."""
        return max(self.click, self.save, self.contact, self.booking_start) + self.dwell_bonus


def labels_of(interactions: Iterable[Interaction]) -> Labels:
    """Count interactions per type and sum dwell seconds (all for one trip)."""
    counts = {"click": 0, "save": 0, "booking_start": 0, "contact": 0}
    dwell_s = 0.0
    for ev in interactions:
        if ev.type == "dwell":
            dwell_s += ev.value
        else:
            counts[ev.type] += 1
    return Labels(counts["click"], counts["save"], counts["booking_start"], counts["contact"], dwell_s)


def examined_by_rank(engaged: Sequence[bool], *, no_click_examined_top_n: int = 3) -> tuple[bool, ...]:
    """Cascade examination flags, given engagement flags in rank order.

    Examples
    --------
    >>> examined_by_rank([False, False, True, False, False])
    (True, True, True, True, False)
    >>> examined_by_rank([False] * 5, no_click_examined_top_n=2)
    (True, True, False, False, False)
    """
    last = max((rank for rank, hit in enumerate(engaged) if hit), default=None)
    limit = no_click_examined_top_n if last is None else last + 2
    return tuple(rank < limit for rank in range(len(engaged)))


_NO_LABELS = Labels()  # most shown trips get no interaction: share one instance


@dataclass(frozen=True, slots=True)
class SlateOutcome:
    """What a slate's interactions are worth, per item in slate order (no examples built yet)."""

    labels: tuple[Labels, ...]
    rewards: tuple[float, ...]
    examined: tuple[bool, ...]

    def item(self, k: int) -> tuple[Labels, float, bool]:
        """Labels, reward and examined flag of item ``k``: what differs between its examples."""
        return self.labels[k], self.rewards[k], self.examined[k]


def label_slate(
    p: PackedImpression,
    attached: Iterable[Interaction],
    *,
    reward: RewardConfig | None = None,
    no_click_examined_top_n: int = 3,
) -> SlateOutcome:
    """Labels, rewards and examined flags of a slate's items from the interactions joined to it."""
    reward = reward if reward is not None else RewardConfig()
    by_trip: dict[str, list[Interaction]] = {}
    for ev in attached:
        by_trip.setdefault(ev.trip_id, []).append(ev)
    trips, positions, n = p.trips, p.positions, len(p.trips)
    labels = [labels_of(by_trip[t]) if t in by_trip else _NO_LABELS for t in trips]
    ranked = sorted(range(n), key=positions.__getitem__)
    flags = examined_by_rank(
        [labels[k].engaged for k in ranked], no_click_examined_top_n=no_click_examined_top_n
    )
    examined = [False] * n
    for k, flag in zip(ranked, flags, strict=True):
        examined[k] = flag
    rewards = tuple(0.0 if lab is _NO_LABELS else reward.reward(lab) for lab in labels)
    return SlateOutcome(tuple(labels), rewards, tuple(examined))


def examples_from(
    p: PackedImpression, outcome: SlateOutcome, revisions: Sequence[int], indices: Iterable[int]
) -> list[Example]:
    """The examples of items ``indices`` of a labelled slate, with their ``revisions`` (slate order)."""
    rows, positions, props, randomized = p.rows(), p.positions, p.propensities, p.randomized
    rid, sid, uid, seg, pol, mv, fv, ts = (
        p.request_id, p.session_id, p.user_id, p.segment, p.policy, p.model_version, p.feature_version, p.ts
    )  # fmt: skip
    out: list[Example] = []
    for k in indices:
        t, lab = p.trips[k], outcome.labels[k]
        out.append(Example(
            f"{rid}:{t}", rid, t, sid, uid, seg, pol, mv, fv, rows[k], positions[k], props[k],
            outcome.rewards[k], lab, lab.click > 0, outcome.examined[k], ts, revisions[k], randomized[k],
        ))  # fmt: skip
    return out


def examples_of(
    imp: Impression | PackedImpression,
    attached: Iterable[Interaction],
    *,
    revisions: Sequence[int] | None = None,
    reward: RewardConfig | None = None,
    no_click_examined_top_n: int = 3,
) -> tuple[Example, ...]:
    """One example per shown trip (slate order), from the interactions joined to the slate.

    ``revisions`` gives each item's revision (default all 0). ``imp`` may be
    the join's packed form of the impression (same examples).
    """
    p = imp if isinstance(imp, PackedImpression) else PackedImpression.of(imp)
    outcome = label_slate(p, attached, reward=reward, no_click_examined_top_n=no_click_examined_top_n)
    n = len(p.trips)
    return tuple(examples_from(p, outcome, revisions if revisions is not None else (0,) * n, range(n)))
