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
from stream.events import Impression, Interaction, SlateItem

__all__ = ["Expected", "TopicRecord", "synthetic_sessions"]

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
