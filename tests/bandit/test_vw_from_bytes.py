"""VWPolicy.from_bytes opens one VW workspace and loads the same policy as the old two-workspace path.

"The old way" is :meth:`BaseLearner.from_bytes` called for :class:`VWPolicy`
without VWPolicy's override (``super(VWPolicy, VWPolicy).from_bytes``): the
constructor opens an empty workspace, then ``_load`` the restored one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import vowpal_wabbit_next

from bandit._format import pack, unpack
from bandit.errors import ModelFormatError
from bandit.fast_kernels import accelerate
from bandit.protocol import Learner, learner_from_bytes
from bandit.vw_policy import VWPolicy
from scoring.policies import fast_scorer


def _data(n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 20)) < 0.3).astype(float) * rng.random((n, 20))
    return X, (rng.random(n) < 0.1 + 0.5 * X[:, 1]).astype(float), rng.integers(0, 10, n)


def _trained(learner: Learner, n: int, seed: int) -> Learner:
    if n:
        X, y, pos = _data(n, seed)
        learner.learn_many(X, y, positions=pos)
    return learner


def _old_way(blob: bytes) -> VWPolicy:
    return super(VWPolicy, VWPolicy).from_bytes(blob)  # BaseLearner's: constructor, then _load


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every VW workspace opened from now on: True if restored from model bytes, False if empty."""
    log: list[bool] = []
    real = vowpal_wabbit_next.Workspace

    def counting(*args: Any, **kwargs: Any) -> Any:
        log.append(kwargs.get("model_data") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(vowpal_wabbit_next, "Workspace", counting)
    return log


VW_CASES = [
    pytest.param(0, {}, id="untrained"),
    pytest.param(2000, {}, id="squarecb"),
    pytest.param(2000, {"exploration": "epsilon", "epsilon": 0.1}, id="epsilon"),
    pytest.param(1500, {"bits": 18, "gamma_scale": 3.0, "position_bias": "none"}, id="18-bits"),
]


@pytest.mark.parametrize(("n", "params"), VW_CASES)
def test_loads_equal_to_the_old_way(n: int, params: dict[str, Any]) -> None:
    seed = 7 + n
    blob = _trained(VWPolicy(seed=seed, **{"bits": 16, **params}), n, seed).to_bytes()
    want, got = _old_way(blob), learner_from_bytes(blob)
    assert type(got) is VWPolicy and type(want) is VWPolicy
    assert got.n_examples == want.n_examples == n
    np.testing.assert_array_equal(got.weights_array(), want.weights_array())
    assert got.to_bytes() == want.to_bytes()  # (VW's own bytes after a load differ from the blob's)
    X, _, _ = _data(300, seed + 1)
    np.testing.assert_array_equal(got.score_many(X), want.score_many(X))
    fast_got, fast_want = fast_scorer(got), fast_scorer(want)
    if params.get("exploration") == "epsilon":
        assert fast_got is None and fast_want is None
    else:
        assert fast_got is not None and fast_want is not None
        X32 = X.astype(np.float32)
        np.testing.assert_array_equal(fast_got(X32, "general"), fast_want(X32, "general"))


def test_a_loaded_policy_keeps_learning_and_clones_like_the_old_way() -> None:
    blob = _trained(VWPolicy(bits=16, seed=3), 1000, 3).to_bytes()
    want, got = _old_way(blob), VWPolicy.from_bytes(blob)
    X, y, pos = _data(500, 4)
    for learner in (want, got):
        learner.learn_many(X, y, positions=pos)
    assert got.to_bytes() == want.to_bytes()
    clone = got.clone()
    assert type(clone) is VWPolicy
    clone.learn_many(X, y, positions=pos)
    assert clone.n_examples == 500


def test_loading_opens_one_workspace(opened: list[bool]) -> None:
    blob = _trained(VWPolicy(bits=16, seed=1), 200, 1).to_bytes()
    opened.clear()
    _old_way(blob)
    assert opened == [False, True]  # what this test guards against: an empty workspace, then the restored one
    opened.clear()
    learner_from_bytes(blob)
    assert opened == [True]
    opened.clear()
    VWPolicy.from_bytes(blob)
    assert opened == [True]
    opened.clear()
    VWPolicy(bits=16).clone()  # construction is unchanged: one empty workspace each
    assert opened == [False, False]


def test_the_learner_load_path_opens_one_workspace_per_policy(opened: list[bool]) -> None:
    """The stream learner loads with learner_from_bytes, then accelerate() (a from_bytes of its own)."""
    blob = _trained(VWPolicy(bits=16, seed=2), 200, 2).to_bytes()
    opened.clear()
    fast = accelerate(learner_from_bytes(blob))
    assert opened == [True, True]  # was [False, True, False, True]
    assert fast.to_bytes() == learner_from_bytes(blob).to_bytes()


def test_a_workspace_is_opened_again_after_a_failed_load(opened: list[bool]) -> None:
    """A load that fails leaves no flag behind: the next construction opens its workspace."""
    with pytest.raises(ModelFormatError):
        VWPolicy.from_bytes(VWPolicy(bits=16).to_bytes()[:-40])
    opened.clear()
    policy = VWPolicy(bits=16)
    assert opened == [False]
    assert policy.score_many(np.ones((3, 20))).sum() == pytest.approx(1.0)


def _colliding_names(bits: int, n: int) -> list[str]:
    """``n`` names of which the last two hash to one VW slot at ``bits`` bits (namespace ``a``)."""
    ws = vowpal_wabbit_next.Workspace(["--quiet", "-b", str(bits)])
    parser = vowpal_wabbit_next.TextFormatParser(ws)
    seen: dict[int, str] = {}
    for i in range(10_000):
        name = f"f{i}"
        index = parser.parse_line(f"|a {name}:1")["a"].indices[0]
        if index in seen:
            return [f"g{j}" for j in range(n - 2)] + [seen[index], name]
        seen[index] = name
    raise AssertionError("no collision found")  # pragma: no cover - 10,000 names into 256 slots


def _with_names(blob: bytes, names: list[str]) -> bytes:
    u = unpack(blob, "vw_cb", (1,))
    return pack(u.kind, u.schema, {**u.params, "feature_names": names}, u.state, u.arrays)


BAD_BLOBS = [
    pytest.param(lambda: b"", id="empty"),
    pytest.param(lambda: b"not a model", id="garbage"),
    pytest.param(lambda: VWPolicy(bits=16).to_bytes()[:-40], id="truncated-vw"),
    pytest.param(lambda: _with_names(VWPolicy(bits=16).to_bytes(), ["a b", "c"]), id="unsafe-name"),
    pytest.param(
        lambda: _with_names(VWPolicy(bits=8, feature_names=["x0", "x1"]).to_bytes(), _colliding_names(8, 2)),
        id="hash-collision",
    ),
]


@pytest.mark.parametrize("make", BAD_BLOBS)
def test_bad_bytes_raise_what_the_old_way_raised(make: Any) -> None:
    blob = make()
    with pytest.raises(ModelFormatError) as want:
        _old_way(blob)
    with pytest.raises(ModelFormatError) as got:
        VWPolicy.from_bytes(blob)
    assert str(got.value) == str(want.value)
