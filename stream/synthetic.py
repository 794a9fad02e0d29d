"""Seeded synthetic sessions with known clicks, as raw topic records.

Used by the integration tests and the join benchmark: every session has one
slate, some of its trips are clicked (a few clicks duplicated, a few sent
without ``request_id``), and :class:`Expected` records exactly which examples
the join must emit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stream.codec import encode
from stream.events import Example, Impression, Interaction, Labels, SlateItem

__all__ = ["Expected", "TopicRecord", "synthetic_examples", "synthetic_sessions"]

SEGMENTS = ("adventure", "luxury", "budget", "culture", "general")


@dataclass(frozen=True, slots=True)
class TopicRecord:
    topic: str
    key: bytes
    value: bytes


@dataclass
class Expected:
    examples: int = 0
    clicks: set[tuple[str, str]] = field(default_factory=set)  # (request_id, trip_id)
    positions: dict[tuple[str, str], int] = field(default_factory=dict)


def synthetic_sessions(
    *,
    n_sessions: int,
    seed: int,
    t0: float,
    slate_size: int = 10,
    d: int = 20,
    click_p: float = 0.15,
    spacing_s: float = 0.001,
    impressions_topic: str = "impressions",
    interactions_topic: str = "interactions",
) -> tuple[list[TopicRecord], Expected]:
    """Records in event-time order: each impression, then its clicks 0.5–1.5 s later."""
    rng = np.random.default_rng(seed)
    records: list[TopicRecord] = []
    expected = Expected()
    for s in range(n_sessions):
        session_id = f"s{seed}-{s}"
        request_id = f"r{seed}-{s}"
        ts = t0 + s * spacing_s
        trips = [f"t{int(x)}" for x in rng.choice(10_000, size=slate_size, replace=False)]
        phi = rng.random((slate_size, d)).round(4)
        slate = tuple(
            SlateItem(trip, pos, float(slate_size - pos), 1.0, tuple(float(v) for v in phi[pos]))
            for pos, trip in enumerate(trips)
        )
        imp = Impression(
            request_id=request_id,
            session_id=session_id,
            user_id=f"u{int(rng.integers(1_000_000))}",
            segment=SEGMENTS[s % len(SEGMENTS)],
            policy="rules",
            model_version="rules-0",
            feature_version="phi-v1",
            ts=ts,
            slate=slate,
        )
        key = session_id.encode()
        records.append(TopicRecord(impressions_topic, key, encode(imp)))
        expected.examples += slate_size
        for pos in np.flatnonzero(rng.random(slate_size) < click_p / (1 + 0.2 * np.arange(slate_size))):
            trip = trips[int(pos)]
            with_request = rng.random() < 0.8  # some frontends do not know the slate
            click = Interaction(
                event_id=f"e{seed}-{s}-{pos}",
                session_id=session_id,
                trip_id=trip,
                type="click",
                ts=ts + 0.5 + float(rng.random()),
                request_id=request_id if with_request else None,
            )
            records.append(TopicRecord(interactions_topic, key, encode(click)))
            if rng.random() < 0.05:  # at-least-once delivery upstream: an exact duplicate
                records.append(TopicRecord(interactions_topic, key, encode(click)))
            expected.clicks.add((request_id, trip))
            expected.positions[(request_id, trip)] = int(pos)
    return records, expected


def synthetic_examples(
    *,
    n: int,
    seed: int,
    t0: float,
    segments: tuple[str, ...] = SEGMENTS,
    d: int = 20,
    topic: str = "examples",
) -> list[TopicRecord]:
    """Labelled examples as the join emits them, with clicks from a known logistic model."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(0, 1, d)
    w_true[0] = -2.0  # the always-on BASE_SCORE column sets a low base rate
    X = (rng.random((n, d)) < 0.3).astype(np.float64)
    X[:, 0] = 1.0
    X[:, -5:] = rng.random((n, 5)).round(4)  # continuous columns
    p = 1.0 / (1.0 + np.exp(-(X @ w_true)))
    clicks = rng.random(n) < p
    records = []
    for i in range(n):
        segment = segments[i % len(segments)]
        position = int(rng.integers(0, 10))
        clicked = bool(clicks[i])
        ex = Example(
            example_id=f"r{seed}-{i // 10}:t{i}",
            request_id=f"r{seed}-{i // 10}",
            trip_id=f"t{i}",
            session_id=f"s{seed}-{i // 10}",
            user_id=f"u{i % 997}",
            segment=segment,
            policy="rules",
            model_version="rules-0",
            feature_version="phi-v1",
            phi=tuple(float(v) for v in X[i]),
            position=position,
            propensity=1.0,
            reward=1.0 if clicked else 0.0,
            labels=Labels(click=int(clicked)),
            clicked=clicked,
            examined=True,
            ts=t0 + i * 0.001,
        )
        records.append(TopicRecord(topic, segment.encode(), encode(ex, validate=False)))
    return records
