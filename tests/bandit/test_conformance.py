"""Every learner through the same checks (River's ``river/checks`` idea).

Inputs not mutated, seeding idempotent, bytes round trip (identical scores,
then identical continued learning), predict before learn, learn_many equal to
a loop of learn_one, clone, atomic validation with named errors.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import (
    LearnerInputError,
    LinUCB,
    LogisticLearner,
    ModelFormatError,
    SegmentedLearner,
    VWPolicy,
    learner_from_bytes,
)
from bandit._format import pack, unpack
from bandit.fast_kernels import accelerate
from bandit.protocol import Learner
from features.phi import D
from scoring.weights import SCORING_WEIGHTS
from tests.bandit.synthetic import Data, make_data


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Learner]
    rtol: float = 0.0  # learn_many vs loop (LinUCB's Woodbury batches are equal to ~1e-12)


CASES = [
    Case("lin_ucb", lambda: LinUCB(), rtol=1e-9),
    Case(
        "lin_ucb_prior_naive",
        lambda: LinUCB(alpha=0.3, ridge=2.0, prior=SCORING_WEIGHTS, prior_scale=0.002, position_bias="naive"),
        rtol=1e-9,
    ),
    Case("lin_ucb_sherman_morrison", lambda: LinUCB(batch_chunk=1, position_bias="discount")),
    Case("logistic", lambda: LogisticLearner()),
    Case(
        "logistic_warm_fixed_curve",
        lambda: LogisticLearner(
            prior=SCORING_WEIGHTS, prior_intercept=-3.0, weight_bound=2.0, position_bias=[1.0, 0.6, 0.4]
        ),
    ),
    Case("vw_squarecb", lambda: VWPolicy(seed=3)),
    Case("vw_epsilon_l2", lambda: VWPolicy(exploration="epsilon", epsilon=0.2, l2=1e-6, learning_rate=0.1)),
    Case(
        "segmented_lin_ucb",
        lambda: SegmentedLearner(base=LinUCB(), min_examples=5, shrinkage=10.0),
        rtol=1e-9,
    ),
    Case("segmented_logistic", lambda: SegmentedLearner(base=LogisticLearner(), min_examples=0)),
    # The learner worker's faster loops (bandit.fast_kernels; reference classes without numba).
    Case(
        "fast_lin_ucb",
        lambda: accelerate(LinUCB(prior=SCORING_WEIGHTS, prior_scale=0.002, alpha=0.1)),
        rtol=1e-9,
    ),
    Case(
        "fast_logistic",
        lambda: accelerate(LogisticLearner(prior=SCORING_WEIGHTS, prior_intercept=-3.0, lr=0.1)),
    ),
    Case("fast_vw", lambda: accelerate(VWPolicy(seed=3, bits=16, learning_rate=0.1))),
    Case("fast_vw_importance", lambda: accelerate(VWPolicy(exploration="epsilon", importance_weights=True))),
]

DATA = make_data(240, seed=0)
PROBE = make_data(60, seed=1).X


def learn(model: Learner, data: Data) -> None:
    model.learn_many(data.X, data.rewards, **data.kwargs())


def loop(model: Learner, data: Data) -> None:
    for i in range(len(data.rewards)):
        model.learn_one(
            data.X[i],
            float(data.rewards[i]),
            position=int(data.positions[i]),
            propensity=float(data.propensities[i]),
            randomized=bool(data.randomized[i]),
        )


def assert_scores(a: Learner, b: Learner, rtol: float = 0.0) -> None:
    sa, sb = a.score_many(PROBE), b.score_many(PROBE)
    if rtol == 0.0:
        np.testing.assert_array_equal(sa, sb)
    else:
        np.testing.assert_allclose(sa, sb, rtol=rtol, atol=1e-12)


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    c: Case = request.param
    return c


def test_satisfies_protocol(case: Case) -> None:
    model = case.make()
    assert isinstance(model, Learner)
    assert model.n_features == D and model.n_examples == 0


def test_predict_before_learn(case: Case) -> None:
    model = case.make()
    scores = model.score_many(PROBE)
    assert scores.shape == (len(PROBE),) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert model.rank(PROBE, 5).shape == (5,)
    assert model.score_many(np.empty((0, D), dtype=np.float32)).shape == (0,)


def test_inputs_not_mutated(case: Case) -> None:
    model = case.make()
    before = [a.copy() for a in DATA.arrays()]
    probe = PROBE.copy()
    learn(model, DATA)
    model.learn_one(DATA.X[0], 1.0, position=2, propensity=0.5, randomized=True)
    model.score_many(PROBE)
    model.rank(PROBE, 3)
    for a, b in zip(before, DATA.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(probe, PROBE)


def test_seeding_is_idempotent(case: Case) -> None:
    a, b = case.make(), case.make()
    learn(a, DATA)
    learn(b, DATA)
    assert_scores(a, b)
    assert a.to_bytes() == b.to_bytes()
    assert a.n_examples == len(DATA.rewards)


def test_round_trip_scores_and_continued_learning(case: Case) -> None:
    first, second = DATA.split(150)
    model = case.make()
    learn(model, first)
    restored = type(model).from_bytes(model.to_bytes())
    assert_scores(model, restored)
    assert restored.n_examples == model.n_examples
    learn(model, second)
    learn(restored, second)
    assert_scores(model, restored)
    again = learner_from_bytes(restored.to_bytes())
    assert (
        isinstance(model, type(again)) and again.kind == model.kind
    )  # its class, or the reference it speeds up
    assert_scores(again, model)


def test_learn_many_equals_loop_of_learn_one(case: Case) -> None:
    batched, looped = case.make(), case.make()
    learn(batched, DATA)
    loop(looped, DATA)
    assert_scores(batched, looped, case.rtol)
    assert batched.n_examples == looped.n_examples


def test_learn_many_in_uneven_batches_equals_one_batch(case: Case) -> None:
    whole, parts = case.make(), case.make()
    learn(whole, DATA)
    start = 0
    for size in (1, 7, 50, 2, 100, 80):
        learn(parts, DATA.slice(start, start + size))
        start += size
    assert_scores(whole, parts, case.rtol)


def test_clone_is_untrained_with_same_arguments(case: Case) -> None:
    model = case.make()
    learn(model, DATA)
    fresh = model.clone()
    assert fresh.n_examples == 0
    assert repr(fresh) == repr(model)
    assert_scores(fresh, case.make())


BAD_BATCHES = [
    ({"X": np.ones((3, D - 1))}, f"X: expected shape (n, {D}), got (3, {D - 1})"),
    ({"X": np.full((3, D), np.nan)}, "X[0]: contains non-finite values"),
    ({"X": np.array([["a"] * D] * 3)}, "X: must be numeric, got dtype <U1"),
    ({"rewards": np.array([0.0, np.inf, 1.0])}, "rewards[1]: must be finite"),
    ({"rewards": np.zeros(2)}, "rewards: expected shape (3,), got (2,)"),
    ({"positions": np.array([0, -1, 2])}, "positions[1]: must be a non-negative integer, got -1.0"),
    ({"positions": np.array([0, 1.5, 2])}, "positions[1]: must be a non-negative integer, got 1.5"),
    ({"propensities": np.array([0.5, 0.0, 1.0])}, "propensities[1]: must be in (0, 1], got 0.0"),
    ({"propensities": np.array([0.5, 1.0, 1.5])}, "propensities[2]: must be in (0, 1], got 1.5"),
    ({"randomized": np.array([0.5, 1.0, 1.0])}, "randomized: expected (3,) booleans, got float64 (3,)"),
]


@pytest.mark.parametrize(("override", "message"), BAD_BATCHES)
def test_bad_batch_is_rejected_whole_with_named_error(
    case: Case, override: dict[str, object], message: str
) -> None:
    model = case.make()
    learn(model, DATA.split(20)[0])
    before = model.to_bytes()
    args: dict[str, object] = {
        "X": DATA.X[:3],
        "rewards": np.array([1.0, 0.0, 1.0]),
        "positions": np.array([0, 1, 2]),
        "propensities": np.array([0.5, 0.5, 0.5]),
        "randomized": np.array([False, True, False]),
    }
    args.update(override)
    X, rewards = args.pop("X"), args.pop("rewards")
    with pytest.raises(LearnerInputError) as info:
        model.learn_many(X, rewards, **args)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert model.to_bytes() == before


BAD_ONES = [
    ({"x": np.ones(D + 1)}, f"x: expected shape ({D},), got ({D + 1},)"),
    ({"x": np.full(D, np.inf)}, "x[0]: contains non-finite values"),
    ({"reward": float("nan")}, "reward: must be finite, got nan"),
    ({"reward": "1"}, "reward: must be a number, got str"),
    ({"position": -2}, "position: must be a non-negative integer, got -2"),
    ({"position": 1.0}, "position: must be a non-negative integer, got 1.0"),
    ({"propensity": 0.0}, "propensity: must be in (0, 1], got 0.0"),
    ({"propensity": 2}, "propensity: must be in (0, 1], got 2.0"),
    ({"randomized": 1}, "randomized: must be a bool, got int"),
]


@pytest.mark.parametrize(("override", "message"), BAD_ONES)
def test_bad_example_is_rejected_with_named_error(
    case: Case, override: dict[str, object], message: str
) -> None:
    model = case.make()
    before = model.to_bytes()
    args: dict[str, object] = {
        "x": DATA.X[0],
        "reward": 1.0,
        "position": 0,
        "propensity": 1.0,
        "randomized": False,
    }
    args.update(override)
    with pytest.raises(LearnerInputError) as info:
        model.learn_one(args.pop("x"), args.pop("reward"), **args)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert model.to_bytes() == before


def test_serving_validates_x(case: Case) -> None:
    model = case.make()
    with pytest.raises(LearnerInputError, match=r"X: expected shape \(n, 20\), got \(20,\)"):
        model.score_many(np.ones(D))
    with pytest.raises(LearnerInputError, match=r"X\[1\]: contains non-finite values"):
        model.score_many(np.vstack([np.ones(D), np.full(D, np.nan)]))


def test_from_bytes_rejects_other_kinds_and_corruption(case: Case) -> None:
    model = case.make()
    learn(model, DATA.split(30)[0])
    blob = model.to_bytes()
    other = LogisticLearner if not isinstance(model, LogisticLearner) else LinUCB
    with pytest.raises(ModelFormatError, match=f"holds a '{model.kind}' model"):
        other.from_bytes(blob)
    with pytest.raises(ModelFormatError, match="crc32 mismatch"):
        type(model).from_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(ModelFormatError, match="bad magic"):
        type(model).from_bytes(b"\x80\x04pickle")
    with pytest.raises(ModelFormatError):
        type(model).from_bytes(blob[: len(blob) // 2])


HOSTILE_PARAMS = [
    ({"max_position": 10**9}, "max_position: must be an integer in [1, 10000]"),
    ({"feature_names": [f"f{i}" for i in range(5000)]}, "at most 1024 features"),
    ({"prior": [1, 2]}, "bad lin_ucb parameters"),
    ({"unexpected": 1}, "unexpected keyword argument 'unexpected'"),
]


@pytest.mark.parametrize(("override", "message"), HOSTILE_PARAMS)
def test_hostile_headers_raise_model_format_errors(override: dict[str, object], message: str) -> None:
    good = unpack(LinUCB().to_bytes(), "lin_ucb", (1,))
    blob = pack("lin_ucb", 1, {**good.params, **override}, good.state, good.arrays)
    with pytest.raises(ModelFormatError, match=re.escape(message)):
        learner_from_bytes(blob)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_damaged_blobs_load_or_raise_model_format_error_only(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(CASES), label="case").make()
    learn(model, DATA.split(20)[0])
    blob = bytearray(model.to_bytes())
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        i = data.draw(st.integers(0, len(blob) - 1), label="offset")
        blob[i] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(0, len(blob)), label="cut")
    with contextlib.suppress(ModelFormatError):  # anything else fails the test
        learner_from_bytes(bytes(blob[:cut]))
