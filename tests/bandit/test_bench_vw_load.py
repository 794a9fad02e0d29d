"""bench.vw_load: its rows, baselines and the workspaces each configuration opens per load."""

from __future__ import annotations

import pytest

from bandit.fast_kernels import accelerate
from bandit.vw_policy import VWPolicy
from bench.vw_load import measure


def test_measure_pairs_each_configuration_with_its_two_workspace_baseline() -> None:
    rows = measure(loads=2, rounds=1)
    assert [r["config"] for r in rows] == [
        "scoring: before",
        "scoring: learner_from_bytes",
        "learner: before",
        "learner: learner_from_bytes+accelerate",
    ]
    accelerated = type(accelerate(VWPolicy(bits=16))) is not VWPolicy  # FastVW: a second from_bytes
    assert [r["workspaces_per_load"] for r in rows] == [2, 1, 4, 2 if accelerated else 1]
    assert rows[0]["vs_baseline"] == rows[2]["vs_baseline"] == 1.0
    for base, new in (rows[0:2], rows[2:4]):
        assert base["cpu_ms_per_load"] > 0 and new["cpu_ms_per_load"] > 0
        assert new["vs_baseline"] == pytest.approx(new["cpu_ms_per_load"] / base["cpu_ms_per_load"])


def test_measure_refuses_empty_runs() -> None:
    with pytest.raises(ValueError, match="loads and rounds must be >= 1"):
        measure(loads=0)
