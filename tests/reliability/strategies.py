"""Hypothesis strategies for hostile input: arbitrary JSON, valid records with one field broken."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import strategies as st

from stream.synthetic import synthetic_examples, synthetic_sessions

_T0 = time.time()
_RECORDS, _ = synthetic_sessions(n_sessions=20, seed=11, t0=_T0)
VALID_IMPRESSIONS: list[bytes] = [r.value for r in _RECORDS if r.topic == "impressions"]
VALID_INTERACTIONS: list[bytes] = [r.value for r in _RECORDS if r.topic == "interactions"]
VALID_EXAMPLES: list[bytes] = [r.value for r in synthetic_examples(n=20, seed=12, t0=_T0)]

# Numbers at and beyond every edge: NaN/inf (only the stdlib parser reads them),
# negative and huge positions, 64-bit edges, bools where numbers belong.
edge_numbers = (
    st.sampled_from(
        [0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 1e308, -0.0, 1e-320, 0.5, 1.0000001, True, False]
    )
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
)
edge_strings = st.sampled_from(
    ["", " ", "x" * 129, "x" * 2000, "\x00", "\ud7ff", "click", "view", "a:b"]
) | st.text(max_size=40)
json_leaf = st.none() | st.booleans() | edge_numbers | edge_strings
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(edge_strings, inner, max_size=4),
    max_leaves=12,
)


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value``; NaN and infinity as the stdlib writes them (invalid JSON, valid input)."""
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, valid: list[bytes]) -> dict[str, Any]:
    """A valid record (as a dict) with one to three fields, or slate/label sub-fields, replaced or removed."""
    obj: dict[str, Any] = json.loads(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(1, 3))):
        target: dict[str, Any] = obj
        if "slate" in obj and isinstance(obj["slate"], list) and obj["slate"] and draw(st.booleans()):
            i = draw(st.integers(0, len(obj["slate"]) - 1))
            if isinstance(obj["slate"][i], dict):
                target = obj["slate"][i]
        elif isinstance(obj.get("labels"), dict) and draw(st.booleans()):
            target = obj["labels"]
        keys = sorted(target)
        if not keys:
            continue
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            del target[key]
        else:
            target[key] = draw(json_values)
    return obj
