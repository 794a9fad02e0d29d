"""Exact top-k with a documented tie rule, in O(n) via ``argpartition``.

Order: higher score first; equal scores keep catalog order (lower row first).
The reference heap implementation in :mod:`scoring.reference` uses the same
rule, so both agree item for item even though rule scores tie often (they
are small integers).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["top_k"]


def top_k(scores: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.intp]:
    """Indices into ``scores`` of the k best, best first (ties: lower index first).

    >>> top_k(np.array([1.0, 3.0, 3.0, 2.0]), 2).tolist()
    [1, 2]
    """
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.intp)
    if k < n:
        kth = np.partition(scores, n - k)[n - k]  # the k-th largest value
        chosen = np.flatnonzero(scores >= kth)  # every candidate, ties at the boundary included
    else:
        chosen = np.arange(n)
    # chosen is in index order, so a stable sort on -score breaks ties by index.
    order = np.argsort(-scores[chosen], kind="stable")[:k]
    return chosen[order].astype(np.intp, copy=False)
