"""Ranking metrics against plain per-slate loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandit.ranking_metrics import ranking_metrics


def brute(slates: dict[int, list[tuple[int, float, bool, int, np.ndarray]]], k: int) -> dict[str, float]:
    mrr = ndcg = div = 0.0
    n_div = 0
    for rows in slates.values():
        rows = sorted(rows, key=lambda r: r[0])
        first = next((i for i, r in enumerate(rows) if r[2]), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
        dcg = sum(r[1] / math.log2(i + 2) for i, r in enumerate(rows[:k]))
        ideal = sorted((r[1] for r in rows), reverse=True)
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:k]))
        ndcg += dcg / idcg if idcg > 0 else 0.0
        if len(rows) > 1:
            dists = [1 - float(a[4] @ b[4] / np.linalg.norm(a[4]) / np.linalg.norm(b[4]))
                     for i, a in enumerate(rows) for b in rows[i + 1 :]]  # fmt: skip
            div += sum(dists) / len(dists)
            n_div += 1
    return {"mrr": mrr / len(slates), "ndcg": ndcg / len(slates), "diversity": div / n_div}


@pytest.mark.parametrize("seed", range(3))
def test_metrics_match_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_slates = 60
    slate, position, reward, clicked, item, feats = [], [], [], [], [], []
    per: dict[int, list[tuple[int, float, bool, int, np.ndarray]]] = {}
    for s in range(n_slates):
        size = int(rng.integers(1, 14))
        for pos in rng.permutation(size):  # rows out of order on purpose
            c = bool(rng.random() < 0.2)
            r = float(c) * rng.choice([1.0, 2.0, 5.0])
            it, f = int(rng.integers(0, 40)), rng.random(4) + 0.01
            slate.append(s)
            position.append(int(pos))
            reward.append(r)
            clicked.append(c)
            item.append(it)
            feats.append(f)
            per.setdefault(s, []).append((int(pos), r, c, it, f))
    m = ranking_metrics(slate=slate, position=position, reward=reward, clicked=clicked, item=item,
                        features=np.array(feats), k=10, catalog_size=40)  # fmt: skip
    want = brute(per, 10)
    assert m.mrr == pytest.approx(want["mrr"], abs=1e-12)
    assert m.ndcg == pytest.approx(want["ndcg"], abs=1e-12)
    assert m.diversity == pytest.approx(want["diversity"], abs=1e-12)
    assert m.ctr == pytest.approx(np.mean(clicked))
    assert m.coverage_items == len(set(item)) and m.coverage == len(set(item)) / 40
