"""Shadow-scored rows for the promotion gate: exact propensities of the candidate over the full candidate set.

The scoring worker (:mod:`scoring.shadow`) adds to a sample of impressions the
candidate version that shadow-scored the request and, per position, the
probability that the candidate would have placed the served trip there. The
gate reads those impressions (:class:`ShadowLog`) and, when a candidate
version has at least ``min_examples`` shadow-scored examples *served by the
champion* (so the logged propensities are the champion's own), compares the
two on those rows alone (:func:`shadow_comparison`): the candidate's
importance weight is exact (``π_c / p``), the champion's is 1 (on-policy), the
estimator SNIPS (a reward model over the whole candidate set is not available,
so DR is not), with the same paired bootstrap and decision table
(:mod:`bandit.promotion`). Otherwise the gate falls back to re-ranking the
logged slates.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import orjson

from bandit.ope import OPEData
from bandit.promotion import Comparison, GateRule, decide, paired_values
from stream.events import Example
from stream.examples_source import logs_from_examples

__all__ = ["ShadowLog", "shadow_comparison"]


class ShadowLog:
    """The shadow fields of recent impressions: request id -> (candidate label, propensity per position)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[str, tuple[str, tuple[float, ...]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, request_id: str, label: str, propensities: Sequence[float]) -> None:
        self._rows[request_id] = (label, tuple(propensities))
        self._rows.move_to_end(request_id)
        while len(self._rows) > self.capacity:
            self._rows.popitem(last=False)

    def get(self, request_id: str) -> tuple[str, tuple[float, ...]] | None:
        return self._rows.get(request_id)

    def add_impression(self, value: bytes | None) -> str:
        """Keep the shadow field of an impression record.

        Returns ``kept``, ``absent`` (an impression without one: fine, nothing kept) or the
        reason code of a malformed record (``bad_json``, ``bad_shadow``).

        >>> log = ShadowLog(2)
        >>> log.add_impression(b'{"request_id": "r1", "shadow": {"model_version": "vw/general/v3",'
        ...                    b' "propensities": [0.9, 0.01]}}'), log.get("r1")
        ('kept', ('vw/general/v3', (0.9, 0.01)))
        >>> log.add_impression(b'{"request_id": "r2"}'), log.add_impression(b'{"shadow": 1}')
        ('absent', 'bad_shadow')
        """
        try:
            body = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            return "bad_json"
        if not isinstance(body, dict) or "shadow" not in body:
            return "absent"
        shadow, request_id = body["shadow"], body.get("request_id")
        if not isinstance(shadow, dict) or not isinstance(request_id, str):
            return "bad_shadow"
        label, props = shadow.get("model_version"), shadow.get("propensities")
        if not isinstance(label, str) or not isinstance(props, list) or not props:
            return "bad_shadow"
        for p in props:
            if (
                isinstance(p, bool)
                or not isinstance(p, int | float)
                or not (math.isfinite(p) and 0 <= p <= 1)
            ):
                return "bad_shadow"
        self.add(request_id, label, [float(p) for p in props])
        return "kept"


def shadow_comparison(
    examples: Sequence[Example], shadows: ShadowLog, candidate_label: str, champion_label: str, rule: GateRule,
    *, champion_name: str,
) -> tuple[Comparison | None, int]:  # fmt: skip
    """The exact comparison on shadow-scored rows served by the champion (None if too few), and their number."""
    rows: list[Example] = []
    pi_c: list[float] = []
    for e in examples:
        found = shadows.get(e.request_id)
        if found is None or found[0] != candidate_label or e.model_version != champion_label:
            continue
        if e.position >= len(found[1]):
            continue
        rows.append(e)
        pi_c.append(found[1][e.position])
    if len(rows) < rule.min_examples:
        return None, len(rows)
    logs = logs_from_examples(rows)
    cand = OPEData.from_arrays(
        reward=logs.reward, position=logs.position, pscore=logs.pscore, pi_e=np.array(pi_c), group=logs.slate
    )
    champ = OPEData.from_arrays(
        reward=logs.reward, position=logs.position, pscore=logs.pscore, pi_e=logs.pscore, group=logs.slate
    )
    exact = replace(rule, estimator="snipw")
    (c, p), diff = paired_values(cand, champ, exact)
    decision, reason = decide(exact, len(rows), c, p, diff, champion_name=champion_name)
    reason = f"shadow-scored, {reason}"
    return Comparison(decision, reason, len(rows), exact, c, p, diff, basis="shadow-scored"), len(rows)
