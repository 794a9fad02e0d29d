"""A/B experiment: variants, traffic split, and a deterministic, minimal-move assignment.

Assignment. The unit is the pseudonymous user id (:mod:`scoring.pseudonym`),
or the session id for anonymous requests. Its bucket is

    bucket = BLAKE2b-64(salt ‖ 0x1f ‖ unit) mod 10,000

and an *allocation table* maps each of the 10,000 buckets to a variant.
Everything is deterministic: the same salt, table and unit give the same
variant in every worker and after every restart (the experiment, table
included, lives in Redis; see :mod:`scoring.experiment_store`).

Traffic split. A variant with traffic fraction ``f`` owns ``round(10,000 f)``
buckets (largest remainder, so the counts add up to 10,000): the split is
exact to 0.01 %, and the observed fractions over N users are binomial around
it.

Changing the split moves only the users it must. :func:`reallocate` keeps
every bucket with its variant unless that variant now owns too many; a
variant that shrinks gives up its highest-numbered buckets, and a variant
that grows takes the lowest-numbered freed ones. The number of buckets that
change hands is ``Σ_v max(0, old_v − new_v)`` — the total variation distance
between the two splits, which is the least any assignment can move. A new
salt starts a fresh experiment: the table is rebuilt from contiguous ranges
and users are re-randomised.

>>> exp = Experiment.from_request({"name": "e1", "salt": "s1", "variants": [
...     {"name": "control", "policy": "rules", "traffic": 0.5},
...     {"name": "ucb", "policy": "linucb", "traffic": 0.5, "epsilon": 0.05}]}, None)
>>> exp.counts()
{'control': 5000, 'ucb': 5000}
>>> moved = exp.with_split({"control": 0.3, "ucb": 0.7})
>>> moved.counts(), int((moved.table != exp.table).sum())
({'control': 3000, 'ucb': 7000}, 2000)
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.errors import RequestError

__all__ = [
    "BUCKETS",
    "POLICIES",
    "Experiment",
    "Variant",
    "bucket_of",
    "reallocate",
]

BUCKETS: Final = 10_000
#: Policies a variant may serve (see :mod:`scoring.policies`).
POLICIES: Final = ("rules", "logistic", "linucb", "vw")
MAX_VARIANTS: Final = 16
DEFAULT_EPSILON: Final = 0.1
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MAX_SALT = 128


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of the experiment: the policy it serves and its exploration rate."""

    name: str
    policy: str
    traffic: float
    epsilon: float = DEFAULT_EPSILON

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "policy": self.policy, "traffic": self.traffic, "epsilon": self.epsilon}


def bucket_of(salt: str, unit: str) -> int:
    """The unit's bucket in ``[0, BUCKETS)``: BLAKE2b-64 of ``salt ‖ 0x1f ‖ unit`` mod BUCKETS."""
    digest = hashlib.blake2b(f"{salt}\x1f{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def _quota(fractions: Sequence[float]) -> list[int]:
    """Bucket counts proportional to ``fractions`` that add up to BUCKETS (largest remainder)."""
    raw = [f * BUCKETS for f in fractions]
    counts = [math.floor(r) for r in raw]
    short = BUCKETS - sum(counts)
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in by_remainder[:short]:
        counts[i] += 1
    return counts


def reallocate(table: npt.NDArray[np.int16], targets: Sequence[int]) -> npt.NDArray[np.int16]:
    """A new table with ``targets[v]`` buckets per variant index, moving the fewest buckets.

    ``table`` holds a variant index per bucket (``-1`` = unowned, e.g. a removed
    variant). Variants over target release their highest buckets; variants
    under target take the lowest free ones, in variant order.
    """
    if sum(targets) != BUCKETS:
        raise ValueError(f"targets: must add up to {BUCKETS}, got {sum(targets)}")
    out = table.copy()
    for v, target in enumerate(targets):
        owned = np.flatnonzero(out == v)
        if len(owned) > target:
            out[owned[target:]] = -1
    free = np.flatnonzero((out < 0) | (out >= len(targets)))
    start = 0
    for v, target in enumerate(targets):
        need = target - int((out == v).sum())
        if need > 0:
            out[free[start : start + need]] = v
            start += need
    return out


def _fresh_table(counts: Sequence[int]) -> npt.NDArray[np.int16]:
    return np.repeat(np.arange(len(counts), dtype=np.int16), counts)


@dataclass(frozen=True, eq=False)
class Experiment:
    """Variants, a salt, a revision and the allocation table (bucket → variant index)."""

    name: str
    salt: str
    variants: tuple[Variant, ...]
    table: npt.NDArray[np.int16]
    revision: int = 1

    def __post_init__(self) -> None:
        self.table.setflags(write=False)

    # -- assignment
    def assign(self, unit: str) -> Variant:
        """The variant of a pseudonymous user id (or session id)."""
        return self.variants[int(self.table[bucket_of(self.salt, unit)])]

    def variant(self, name: str) -> Variant | None:
        for v in self.variants:
            if v.name == name:
                return v
        return None

    def counts(self) -> dict[str, int]:
        """Buckets owned per variant."""
        per = np.bincount(self.table, minlength=len(self.variants))
        return {v.name: int(per[i]) for i, v in enumerate(self.variants)}

    # -- changes
    def with_split(self, traffic: Mapping[str, float]) -> Experiment:
        """The same variants with new traffic fractions (minimal moves)."""
        variants = [
            Variant(v.name, v.policy, float(traffic.get(v.name, 0.0)), v.epsilon) for v in self.variants
        ]
        return self.updated(self.name, self.salt, variants)

    def updated(self, name: str, salt: str, variants: Sequence[Variant]) -> Experiment:
        """The next revision: same salt → buckets move minimally; new salt → a fresh table."""
        _check_split(variants)
        targets = _quota([v.traffic for v in variants])
        if salt != self.salt:
            table = _fresh_table(targets)
        else:
            index = {v.name: i for i, v in enumerate(variants)}
            old_to_new = np.array([index.get(v.name, -1) for v in self.variants], dtype=np.int16)
            table = reallocate(old_to_new[self.table], targets)
        return Experiment(name, salt, tuple(variants), table, self.revision + 1)

    # -- wire form
    def to_dict(self, *, with_table: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "salt": self.salt,
            "revision": self.revision,
            "variants": [v.to_dict() for v in self.variants],
            "buckets": self.counts(),
        }
        if with_table:
            body["allocation"] = _ranges(self.table)
        return body

    @classmethod
    def from_dict(cls, raw: object) -> Experiment:
        """A stored experiment (with its ``allocation`` table), validated; errors name the field."""
        name, salt, variants, obj = _parse(raw)
        revision = obj.get("revision", 1)
        if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
            raise RequestError("revision", "must be an integer >= 1")
        if obj.get("allocation") is None:
            raise RequestError("allocation", "is required in a stored experiment")
        return cls(name, salt, variants, _table(obj["allocation"], len(variants)), revision)

    @classmethod
    def from_request(cls, raw: object, previous: Experiment | None) -> Experiment:
        """An admin's new experiment: the table follows from ``previous`` with minimal moves.

        ``revision``, ``buckets`` and ``allocation`` in the body are ignored here
        (a GET body can be edited and PUT back); see :mod:`scoring.experiment_store`
        for ``revision`` as a compare-and-set guard.
        """
        name, salt, variants, _ = _parse(raw)
        if previous is None:
            return cls(name, salt, variants, _fresh_table(_quota([v.traffic for v in variants])), 1)
        return previous.updated(name, salt, variants)


def _parse(raw: object) -> tuple[str, str, tuple[Variant, ...], Mapping[str, Any]]:
    obj = _object(raw, "experiment")
    extra = sorted(set(obj) - {"name", "salt", "variants", "revision", "buckets", "allocation"})
    if extra:
        raise RequestError(extra[0] or '""', "unknown field")
    name = _name(obj.get("name", "default"), "name")
    salt = obj.get("salt")
    if not isinstance(salt, str) or not 0 < len(salt) <= _MAX_SALT:
        raise RequestError("salt", f"must be a non-empty string of at most {_MAX_SALT} characters")
    return name, salt, _variants(obj.get("variants")), obj


def _object(raw: object, field: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise RequestError(field, f"must be an object, got {type(raw).__name__}")
    return raw


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise RequestError(field, "must match [A-Za-z0-9_.-]{1,64}")
    return value


def _number(value: object, field: str, lo: float, hi: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:  # type: ignore[operator]
        raise RequestError(field, f"must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _variants(raw: object) -> tuple[Variant, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_VARIANTS:
        raise RequestError("variants", f"must be a list of 1 to {MAX_VARIANTS} variants")
    out: list[Variant] = []
    for i, item in enumerate(raw):
        at = f"variants[{i}]"
        obj = _object(item, at)
        extra = sorted(set(obj) - {"name", "policy", "traffic", "epsilon"})
        if extra:
            raise RequestError(at + "." + (extra[0] or '""'), "unknown field")
        name = _name(obj.get("name"), f"{at}.name")
        if any(v.name == name for v in out):
            raise RequestError(f"{at}.name", f"duplicate variant name {name!r}")
        policy = obj.get("policy")
        if policy not in POLICIES:
            raise RequestError(f"{at}.policy", f"must be one of {', '.join(POLICIES)}, got {policy!r}")
        traffic = _number(obj.get("traffic"), f"{at}.traffic", 0.0, 1.0)
        epsilon = _number(obj.get("epsilon", DEFAULT_EPSILON), f"{at}.epsilon", 0.0, 1.0)
        out.append(Variant(name, str(policy), traffic, epsilon))
    _check_split(out)
    return tuple(out)


def _check_split(variants: Sequence[Variant]) -> None:
    total = sum(v.traffic for v in variants)
    if abs(total - 1.0) > 1e-6:
        raise RequestError("variants", f"traffic fractions must add up to 1, got {total:.6g}")


def _ranges(table: npt.NDArray[np.int16]) -> list[list[int]]:
    """Run-length form ``[[start, end, variant index], ...]`` (end exclusive)."""
    change = np.flatnonzero(np.diff(table)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(table)]))
    return [[int(s), int(e), int(table[s])] for s, e in zip(starts, ends, strict=True)]


def _table(raw: object, n_variants: int) -> npt.NDArray[np.int16]:
    if not isinstance(raw, list):
        raise RequestError("allocation", "must be a list of [start, end, variant] ranges")
    table = np.full(BUCKETS, -1, dtype=np.int16)
    for i, item in enumerate(raw):
        ok = (
            isinstance(item, list)
            and len(item) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
        )
        if not ok or not (0 <= item[0] < item[1] <= BUCKETS and 0 <= item[2] < n_variants):
            raise RequestError(f"allocation[{i}]", "must be [start, end, variant] within range")
        table[item[0] : item[1]] = item[2]
    if (table < 0).any():
        raise RequestError("allocation", f"must cover every bucket 0..{BUCKETS - 1}")
    return table
