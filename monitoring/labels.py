"""Bounded label values shared by the metric bundles.

A label value that comes from a record (a policy or segment name read from
Kafka) is mapped onto a closed set, so a bad or hostile producer cannot
create unbounded time series.

>>> policy_label("linucb"), policy_label("user-1234"), segment_label("budget"), segment_label("")
('linucb', 'other', 'budget', 'other')
"""

from __future__ import annotations

from features.context import SEGMENTS
from scoring.experiment import POLICIES

__all__ = ["OTHER", "POLICY_LABELS", "SEGMENT_LABELS", "policy_label", "segment_label"]

OTHER = "other"
POLICY_LABELS: frozenset[str] = frozenset(POLICIES)
SEGMENT_LABELS: frozenset[str] = frozenset(SEGMENTS)


def policy_label(policy: str) -> str:
    """``policy`` if it is a known policy, else ``"other"``."""
    return policy if policy in POLICY_LABELS else OTHER


def segment_label(segment: str) -> str:
    """``segment`` if it is a known segment, else ``"other"``."""
    return segment if segment in SEGMENT_LABELS else OTHER
