"""A/B assignment: fractions over 100,000 users, minimal moves on a new split, determinism, validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from scoring.errors import RequestError
from scoring.experiment import BUCKETS, Experiment, bucket_of, reallocate
from scoring.pseudonym import Pseudonymizer

PSEUDO = Pseudonymizer(b"experiment-test-key-01")
USERS = [PSEUDO(f"user-{i}") for i in range(100_000)]


def _exp(split: dict[str, float], salt: str = "s1", previous: Experiment | None = None) -> Experiment:
    policies = {"control": "rules", "ucb": "linucb", "logit": "logistic", "vw": "vw"}
    body = {
        "name": "e",
        "salt": salt,
        "variants": [{"name": n, "policy": policies[n], "traffic": f} for n, f in split.items()],
    }
    return Experiment.from_request(body, previous)


def _assign(exp: Experiment) -> np.ndarray:
    names = [v.name for v in exp.variants]
    return np.array([names.index(exp.assign(u).name) for u in USERS])


def test_split_within_tolerance_over_100k_users() -> None:
    split = {"control": 0.5, "ucb": 0.3, "logit": 0.15, "vw": 0.05}
    got = np.bincount(_assign(_exp(split)), minlength=4) / len(USERS)
    for observed, (name, f) in zip(got, split.items(), strict=True):
        se = math.sqrt(f * (1 - f) / len(USERS))
        assert abs(observed - f) < 4.5 * se, (name, observed, f)


def test_changing_the_split_moves_only_the_users_it_must() -> None:
    before = _exp({"control": 0.5, "ucb": 0.3, "logit": 0.2})
    after = before.with_split({"control": 0.4, "ucb": 0.3, "logit": 0.3})
    a, b = _assign(before), _assign(after)
    moved = a != b
    # only control -> logit moves; ucb users never move
    assert set(zip(a[moved].tolist(), b[moved].tolist(), strict=True)) == {(0, 2)}
    assert (b[a == 1] == 1).all()
    # the minimum is the total variation distance, 0.1 of the users
    assert abs(moved.mean() - 0.1) < 0.006
    assert int((before.table != after.table).sum()) == BUCKETS // 10
    assert after.revision == before.revision + 1


def test_removing_and_adding_variants_moves_the_minimum() -> None:
    before = _exp({"control": 0.5, "ucb": 0.5})
    after = Experiment.from_request(
        {"name": "e", "salt": "s1", "variants": [
            {"name": "control", "policy": "rules", "traffic": 0.5},
            {"name": "vw", "policy": "vw", "traffic": 0.5}]},
        before,
    )  # fmt: skip
    names_before = np.array([v.name for v in before.variants])[before.table]
    names_after = np.array([v.name for v in after.variants])[after.table]
    assert (names_after[names_before == "control"] == "control").all()  # control keeps every bucket
    assert int((names_before != names_after).sum()) == BUCKETS // 2  # the removed variant's users only


def test_new_salt_rerandomises() -> None:
    a = _assign(_exp({"control": 0.5, "ucb": 0.5}, salt="s1"))
    b = _assign(_exp({"control": 0.5, "ucb": 0.5}, salt="s2"))
    assert 0.45 < (a != b).mean() < 0.55


def test_assignment_is_deterministic_and_survives_serialisation() -> None:
    exp = _exp({"control": 0.2, "ucb": 0.8}).with_split({"control": 0.35, "ucb": 0.65})
    restored = Experiment.from_dict(json.loads(json.dumps(exp.to_dict())))
    assert restored.revision == exp.revision and (restored.table == exp.table).all()
    assert all(exp.assign(u) == restored.assign(u) for u in USERS[:5000])
    assert bucket_of("s1", "u_1") == bucket_of("s1", "u_1") != bucket_of("s2", "u_1")


def test_reallocate_keeps_counts_exact() -> None:
    table = np.repeat(np.arange(3, dtype=np.int16), [5000, 3000, 2000])
    out = reallocate(table, [1, 9998, 1])
    assert np.bincount(out).tolist() == [1, 9998, 1]
    assert int((out != table).sum()) == 4999 + 1999


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"salt": "s", "variants": []}, "variants"),
        ({"salt": "", "variants": [{"name": "a", "policy": "rules", "traffic": 1}]}, "salt"),
        ({"salt": "s", "variants": [{"name": "a b", "policy": "rules", "traffic": 1}]}, "variants[0].name"),
        ({"salt": "s", "variants": [{"name": "a", "policy": "magic", "traffic": 1}]}, "variants[0].policy"),
        (
            {"salt": "s", "variants": [{"name": "a", "policy": "rules", "traffic": 1.5}]},
            "variants[0].traffic",
        ),
        ({"salt": "s", "variants": [{"name": "a", "policy": "rules", "traffic": 0.5}]}, "variants"),
        (
            {"salt": "s", "variants": [{"name": "a", "policy": "rules", "traffic": 1, "epsilon": -0.1}]},
            "variants[0].epsilon",
        ),
        (
            {
                "salt": "s",
                "variants": [
                    {"name": "a", "policy": "rules", "traffic": 0.5},
                    {"name": "a", "policy": "vw", "traffic": 0.5},
                ],
            },
            "variants[1].name",
        ),
        (
            {"salt": "s", "variants": [{"name": "a", "policy": "rules", "traffic": 1, "x": 1}]},
            "variants[0].x",
        ),
        ({"salt": "s", "colour": 1, "variants": [{"name": "a", "policy": "rules", "traffic": 1}]}, "colour"),
        ([], "experiment"),
    ],
)
def test_invalid_experiments_name_the_field(body: object, field: str) -> None:
    with pytest.raises(RequestError) as err:
        Experiment.from_request(body, None)
    assert err.value.field == field


def test_stored_experiment_needs_a_full_allocation() -> None:
    body = _exp({"control": 1.0}).to_dict()
    body["allocation"] = [[0, 10, 0]]
    with pytest.raises(RequestError, match="allocation: must cover every bucket"):
        Experiment.from_dict(body)
