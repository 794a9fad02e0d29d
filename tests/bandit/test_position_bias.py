"""Examination estimator and position-correction modes."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import ExaminationEstimator, LearnerConfigError, PositionCorrection
from bandit.position_bias import naive_curve
from bandit.simulate import power_curve


def _randomized_traffic(est: ExaminationEstimator, truth: np.ndarray, slates: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(slates):
        relevance = rng.uniform(0.1, 0.6, size=len(truth))  # independent of position: shuffled slate
        clicks = rng.random(len(truth)) < truth * relevance
        for k, c in enumerate(clicks):
            est.update(k, bool(c))


def test_recovers_a_known_curve_from_randomized_slates() -> None:
    truth = power_curve(10, 0.8)
    est = ExaminationEstimator(max_position=10)
    _randomized_traffic(est, truth, 5_000, seed=0)
    np.testing.assert_allclose(est.curve(), truth, atol=0.03)
    assert est.curve()[0] == 1.0


def test_little_evidence_stays_near_the_naive_prior() -> None:
    est = ExaminationEstimator(max_position=5, strength=10.0)
    np.testing.assert_allclose(est.curve(), naive_curve(5))
    _randomized_traffic(est, np.ones(5), 3, seed=1)  # a handful of clicks
    assert np.abs(est.curve() - naive_curve(5)).max() < np.abs(est.curve() - 1.0)[1:].max()


def test_floor_and_last_bucket() -> None:
    est = ExaminationEstimator(max_position=3, strength=0.0, floor=0.1)
    for _ in range(100):
        est.update(0, True)
        est.update(2, False)
        est.update(7, False)  # counted in the last bucket (2)
    assert est.views.tolist() == [100.0, 0.0, 200.0]
    assert est.examination(2) == est.examination(50) == 0.1


def test_only_randomized_examples_are_counted_and_after_use() -> None:
    pc = PositionCorrection("estimated", max_position=4, strength=0.0)
    pc.step(0, clicked=True, randomized=True)
    pc.step(1, clicked=False, randomized=False)
    assert pc.estimator.views.tolist() == [1.0, 0.0, 0.0, 0.0]
    # the estimate used for an example is the one before counting it
    e_before = pc.estimator.examination(1)
    e_used, _ = pc.step(1, clicked=True, randomized=True)
    assert e_used == e_before
    assert pc.estimator.examination(1) != e_before


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("none", (1.0, 1.0)),
        ("naive", (0.25, 1.0)),
        ("discount", (1.0, 0.25)),
        ([1.0, 0.5, 0.3], (0.3, 1.0)),  # positions past a fixed curve use its last value
    ],
)
def test_modes(mode: str | list[float], expected: tuple[float, float]) -> None:
    assert PositionCorrection(mode).step(3, clicked=True, randomized=False) == expected  # type: ignore[arg-type]


def test_step_many_equals_the_loop() -> None:
    rng = np.random.default_rng(2)
    positions = rng.integers(0, 25, 500)
    clicked = rng.random(500) < 0.3
    randomized = rng.random(500) < 0.5
    a, b = PositionCorrection("estimated"), PositionCorrection("estimated")
    exam, weight = a.step_many(positions, clicked, randomized)
    looped = [
        b.step(int(p), clicked=bool(c), randomized=bool(r))
        for p, c, r in zip(positions, clicked, randomized, strict=True)
    ]
    np.testing.assert_array_equal(exam, [e for e, _ in looped])
    np.testing.assert_array_equal(weight, [w for _, w in looped])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_position": 0}, "max_position: must be an integer in [1, 10000], got 0"),
        ({"strength": -1.0}, "examination_strength: must be a finite number >= 0, got -1.0"),
        ({"floor": 1.5}, "examination_floor: must be in (0, 1], got 1.5"),
    ],
)
def test_bad_configuration_is_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(LearnerConfigError) as info:
        ExaminationEstimator(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize("mode", ["estimated", "naive", "discount", "none", [1.0, 0.6, 0.3]])
def test_step_many_equals_the_loop_of_step(mode: object) -> None:
    rng = np.random.default_rng(11)
    for trial in range(20):
        n = int(rng.integers(0, 300))
        positions = rng.integers(0, 30, n).astype(np.int64)
        clicked = rng.random(n) < 0.3
        randomized = rng.random(n) < (0.02 if trial % 2 else 0.4)
        batch, loop = PositionCorrection(mode), PositionCorrection(mode)  # type: ignore[arg-type]
        for _ in range(2):  # twice: the second batch starts from the state the first left
            exam, weight = batch.step_many(positions, clicked, randomized)
            steps = [loop.step(int(p), clicked=bool(c), randomized=bool(r))
                     for p, c, r in zip(positions, clicked, randomized, strict=True)]  # fmt: skip
            assert exam.tolist() == [e for e, _ in steps] and weight.tolist() == [w for _, w in steps]
            np.testing.assert_array_equal(batch.estimator.views, loop.estimator.views)
            np.testing.assert_array_equal(batch.estimator.clicks, loop.estimator.clicks)
