"""Tables of action probabilities (or of rewards) per position, read from CSV.

Format: one row per action id in order ``0..n−1``, one column per position
``1..L``; blank lines and lines starting with ``#`` are ignored; an optional
header line whose first cell is not a number is skipped. A policy table is an
evaluation policy that ignores the context: ``π_e(a | k) = table[a, k]``,
each column summing to 1. A reward table gives ``q̂(a, k)`` for DM and DR.

>>> read_table(["# uniform over 2 actions, 2 positions", "0.5,0.5", "0.5,0.5"], kind="policy").shape
(2, 2)
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from bandit.ope_validation import OPEInputError

__all__ = ["read_table"]


def read_table(source: Path | Iterable[str], *, kind: Literal["policy", "reward"]) -> npt.NDArray[np.float64]:
    """The (n_actions, n_positions) table from a CSV path or lines; validated for ``kind``."""
    name = f"{kind}_table"
    lines = source.read_text().splitlines() if isinstance(source, Path) else list(source)
    body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    rows = list(csv.reader(body))
    if rows and rows[0] and not _is_number(rows[0][0]):
        rows = rows[1:]
    if not rows:
        raise OPEInputError(name, "has no rows")
    width = len(rows[0])
    values: list[list[float]] = []
    for i, row in enumerate(rows):
        if len(row) != width:
            raise OPEInputError(name, f"row {i} (action {i}) has {len(row)} columns, expected {width}")
        try:
            values.append([float(cell) for cell in row])
        except ValueError:
            raise OPEInputError(name, f"row {i} (action {i}) has a non-numeric cell: {row!r}") from None
    table = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(table)):
        raise OPEInputError(name, "must be finite (no NaN or inf)")
    if kind == "policy":
        if np.any(table < 0) or np.any(table > 1):
            raise OPEInputError(name, "probabilities must be in [0, 1]")
        sums = table.sum(axis=0)
        bad = np.abs(sums - 1.0) > 1e-6
        if bad.any():
            k = int(np.argmax(bad))
            raise OPEInputError(name, f"column of position {k + 1} sums to {float(sums[k])!r}, not 1")
    return table


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
